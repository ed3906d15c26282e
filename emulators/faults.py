"""Fault injection shared by the emulators: latency, 429 with Retry-After, 503.

Faults are set by command-line flags and changed at run time by `POST /_emulator/faults`
with a JSON object of the fields below. Control routes under `/_emulator/` are never faulted.
Each emulator may extend `Faults` with faults of its own.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    """Probabilities are 0..1; `latency_ms` is added to every faulted request."""

    latency_ms: int = 0
    rate_429: float = 0.0
    retry_after_s: int = 1
    rate_503: float = 0.0
    seed: int | None = None

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON object of changes; unknown fields or wrong types raise ValueError."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if isinstance(current, bool) or isinstance(value, bool):
                ok = isinstance(value, bool) and isinstance(current, bool)
            elif isinstance(current, float):
                ok = isinstance(value, int | float)
                value = float(value)
            elif isinstance(current, int):
                ok = isinstance(value, int)
            else:
                ok = value is None or isinstance(value, int | float | str)
            if not ok:
                raise ValueError(f"fault {name!r} has the wrong type")
            if name.startswith("rate_") and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"fault {name!r} must be between 0 and 1")
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Holds the faults of one emulator and applies them as aiohttp middleware."""

    def __init__(self, faults: Faults, throttled_body: Callable[[int], web.Response]) -> None:
        self.faults = faults
        self.random = random.Random(faults.seed)  # test data, not crypto
        self._throttled_body = throttled_body
        self.injected: Counter[str] = Counter()  # faults served, by status: proof they fired

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.random.random() < rate

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        f = self.faults
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if self.roll(f.rate_429):
            self.injected["429"] += 1
            resp = self._throttled_body(429)
            resp.headers["Retry-After"] = str(f.retry_after_s)
            return resp
        if self.roll(f.rate_503):
            self.injected["503"] += 1
            return self._throttled_body(503)
        return await handler(request)

    async def handle_post(self, request: web.Request) -> web.Response:
        """`POST /_emulator/faults`: change faults; answers with the faults now in force."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            self.faults.update(body)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if "seed" in body:
            self.random.seed(self.faults.seed)
        return web.json_response(self.faults.as_dict())

    async def handle_get(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.as_dict())
