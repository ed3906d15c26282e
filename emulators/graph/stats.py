"""Counters read by `GET /_emulator/stats`: requests by route, and what the World counts."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulators.faults import Handler
from emulators.graph.auth import CALLER_KIND
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
        self.by_token: dict[str, Counter[str]] = {"app": Counter(), "delegated": Counter()}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        route = f"{request.method} {route_template(request)}"
        self.requests[route] += 1
        try:
            return await handler(request)
        finally:  # the kind of token the route's handler checked, if it checked one
            kind = request.get(CALLER_KIND)
            if kind in self.by_token:
                self.by_token[kind][route] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "requests_total": sum(self.requests.values()),
            "requests_by_token": {k: dict(sorted(v.items())) for k, v in self.by_token.items()},
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
