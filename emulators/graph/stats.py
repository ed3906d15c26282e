"""Counters read by `GET /_emulator/stats`: requests by route, and what the World counts."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulators.faults import Handler
from emulators.graph.delivery import Delivery
from emulators.graph.tokens import TokenIssuer

if TYPE_CHECKING:
    from emulators.graph.world import World


class Stats:
    """Counts every request outside `/_emulator/` by its route template."""

    def __init__(self, world: World, delivery: Delivery, issuer: TokenIssuer) -> None:
        self.world = world
        self.delivery = delivery
        self.issuer = issuer
        self.requests: Counter[str] = Counter()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/_emulator/"):
            self.requests[f"{request.method} {route_template(request)}"] += 1
        return await handler(request)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "requests_total": sum(self.requests.values()),
            "recording_content_downloads": self.world.recording_content_downloads,
            "transcript_content_downloads": dict(self.world.transcript_content_downloads),
            "notifications": dict(self.delivery.counts),
            "tokens_issued": self.issuer.issued,
        }


def route_template(request: web.Request) -> str:
    """The canonical path template of the matched route, e.g. `/v1.0/subscriptions/{id}`."""
    route = request.match_info.route
    resource = route.resource
    if resource is None or request.match_info.http_exception is not None:
        return "(unmatched)"
    return resource.canonical
