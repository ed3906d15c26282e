"""The emulator's own routes under `/_emulator/`: play, lifecycle, losses, time, state, faults."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulators.graph.clock import Clock
from emulators.graph.faults import GraphFaultInjector
from emulators.graph.notifier import LIFECYCLE_EVENTS, NOT_SENT, Notifier
from emulators.graph.stats import Stats


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the body must be JSON")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    return body


class Control:
    """Handlers of `/_emulator/*` (never faulted, never counted in stats)."""

    def __init__(
        self, notifier: Notifier, stats: Stats, injector: GraphFaultInjector, clock: Clock
    ) -> None:
        self.notifier = notifier
        self.stats = stats
        self.injector = injector
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/_emulator/play", self.play)
        r.add_post("/_emulator/lifecycle", self.lifecycle)
        r.add_post("/_emulator/lose", self.lose)
        r.add_post("/_emulator/advance", self.advance)
        r.add_get("/_emulator/subscriptions", self.subscriptions)
        r.add_get("/_emulator/stats", self.get_stats)
        r.add_get("/_emulator/faults", self.injector.handle_get)
        r.add_post("/_emulator/faults", self.injector.handle_post)

    async def play(self, request: web.Request) -> web.Response:
        """`{}` plays every meeting, `{"meetings": [ids]}` some; 404 for an unknown id."""
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        ids = body.get("meetings")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            return _error(400, '"meetings" must be a list of meeting ids')
        if ids:
            unknown = [i for i in ids if not self._known(i)]
            if unknown:
                return _error(404, f"unknown meeting ids: {', '.join(unknown)}")
        try:
            played = self.notifier.play(ids or None)
        except KeyError as exc:
            return _error(404, f"unknown meeting id: {exc.args[0] if exc.args else ''}")
        return web.json_response({"played": played})

    def _known(self, meeting_id: str) -> bool:
        try:
            self.notifier.world.meeting(meeting_id)
        except KeyError:
            return False
        return True

    async def lifecycle(self, request: web.Request) -> web.Response:
        """`{"subscriptionId", "event"}` posts a lifecycle notification to the subscriber."""
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        event = body.get("event")
        if event in NOT_SENT:
            return _error(400, f"Graph sends no {event} for callRecords or transcripts: "
                               "POST /_emulator/lose loses a subscription silently")  # fmt: skip
        if event not in LIFECYCLE_EVENTS:
            return _error(400, f'"event" must be one of {", ".join(LIFECYCLE_EVENTS)}')
        sub = self.notifier.store.get(str(body.get("subscriptionId", "")))
        if sub is None:
            return _error(404, "no such subscription")
        try:
            self.notifier.lifecycle(sub, str(event))
        except ValueError as exc:
            return _error(409, str(exc))
        return web.json_response({"sent": event, "subscriptionId": sub.id}, status=202)

    async def lose(self, request: web.Request) -> web.Response:
        """`{"subscriptionId"}` drops the subscription silently (a fault live Graph has)."""
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        sub = self.notifier.store.get(str(body.get("subscriptionId", "")))
        if sub is None:
            return _error(404, "no such subscription")
        self.notifier.lose(sub)
        return web.json_response({"lost": sub.id})

    async def advance(self, request: web.Request) -> web.Response:
        """`{"seconds": N}` moves the emulator's clock forward (expiry tests)."""
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return _error(400, '"seconds" must be a number >= 0')
        self.clock.advance(float(seconds))
        return web.json_response(
            {"offset_s": self.clock.offset, "now": self.clock.now().isoformat()}
        )

    async def subscriptions(self, request: web.Request) -> web.Response:
        """Every live subscription as Graph holds it, clientState included."""
        base = f"{request.scheme}://{request.host}"
        values = []
        for sub in self.notifier.store.live():
            doc = sub.to_graph(base, client_state=True)
            del doc["@odata.context"]
            values.append(doc)
        return web.json_response({"value": values})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {**self.stats.as_dict(), "faults_injected": dict(self.injector.injected)}
        )
