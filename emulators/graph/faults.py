"""The Graph emulator's faults: the common ones on `/v1.0/` plus notification faults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulators.faults import FaultInjector, Faults, Handler
from emulators.graph.errors import throttled_body


@dataclass
class GraphFaults(Faults):
    """Rates are 0..1. `delay_s` delays each delivery; `out_of_order` shuffles a play batch."""

    duplicate_rate: float = 0.0  # a notification is delivered twice
    drop_rate: float = 0.0  # a notification is never delivered (reconciliation tests)
    delay_s: float = 0.0
    out_of_order: bool = False
    token_lifetime_s: int = 3600

    def update(self, changes: dict[str, Any]) -> None:
        for name in ("duplicate_rate", "drop_rate"):
            value = changes.get(name)
            if isinstance(value, int | float) and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"fault {name!r} must be between 0 and 1")
        for name in ("delay_s", "token_lifetime_s"):
            value = changes.get(name)
            if isinstance(value, int | float) and value < (0 if name == "delay_s" else 1):
                raise ValueError(f"fault {name!r} is out of range")
        super().update(changes)


class GraphFaultInjector(FaultInjector):
    """Applies latency, 429 and 503 to Graph API routes (`/v1.0/`) only."""

    faults: GraphFaults

    def __init__(self, faults: GraphFaults) -> None:
        super().__init__(faults, throttled_body)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1.0/"):
            return await handler(request)
        return await super().middleware(request, handler)
