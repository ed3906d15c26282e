"""Test harness for the Graph emulator: it and its receivers run on a background event loop.

Running them off the test's loop lets the real sync clients (azure-identity, msal) and the
async msgraph-sdk both talk to the emulator from the test without deadlocks.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web

from emulators.graph.app import EMULATOR_KEY, GraphEmulator, create_app
from emulators.graph.clock import Clock
from emulators.graph.faults import GraphFaults
from emulators.graph.options import GraphOptions
from emulators.graph.world import World
from emulators.scenario import parse
from emulators.tls import client_context, ensure_ca, server_context

T = TypeVar("T")

TENANT = "aaaaaaaa-1111-2222-3333-444444444444"
ALICE = "11111111-aaaa-4bbb-8ccc-000000000001"
BOB = "11111111-aaaa-4bbb-8ccc-000000000002"
SCENARIO: dict[str, Any] = {
    "tenant": {"id": TENANT, "domains": ["contoso.com"]},
    "users": [
        {"id": ALICE, "upn": "alice@contoso.com", "name": "Alice Adams", "eci": True},
        {"id": BOB, "upn": "bob@contoso.com", "name": "Bob Brown", "eci": False},
    ],
    "meetings": [
        {
            "id": "m-001", "subject": "Renewal call", "organizer": "alice@contoso.com",
            "start": "2026-11-20T15:00:00Z", "end": "2026-11-20T15:30:00Z",
            "participants": [{"upn": "alice@contoso.com"},
                             {"email": "carol@fabrikam.com", "name": "Carol Diaz"}],
            "transcript": "WEBVTT\n\n00:00:00.000 --> 00:00:03.000\n<v Alice Adams>Hello.</v>\n",
            "transcript_ready_after_s": 0, "recording": True,
        },
        {
            "id": "m-002", "subject": "Internal sync", "organizer": "bob@contoso.com",
            "start": "2026-11-20T16:00:00Z", "end": "2026-11-20T16:30:00Z",
            "participants": [{"upn": "bob@contoso.com"}, {"upn": "alice@contoso.com"}],
            "transcript": "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Bob Brown>Hi.</v>\n",
        },
        {
            "id": "m-003", "subject": "No transcript", "organizer": "alice@contoso.com",
            "start": "2026-11-20T17:00:00Z", "end": "2026-11-20T17:30:00Z",
            "participants": [{"upn": "alice@contoso.com"}, {"phone": "+14255550100"}],
        },
    ],
}  # fmt: skip


def fast_options(**changes: Any) -> GraphOptions:
    """Timings shrunk for tests."""
    opts = GraphOptions(
        validation_timeout_s=2.0, delivery_timeout_s=1.0, retry_base_s=0.05, retry_attempts=4,
        updated_delay_s=0.1, transcript_poll_s=0.02, lifecycle_check_s=0.05,
    )  # fmt: skip
    for name, value in changes.items():
        setattr(opts, name, value)
    return opts


class BackgroundLoop:
    """An event loop on a thread: servers started here keep answering while the test blocks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._runners: list[web.AppRunner] = []

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> int:
        """Serve `app` on 127.0.0.1 (a free port); returns the port."""

        async def start() -> int:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
            await site.start()
            self._runners.append(runner)
            server = site._server
            assert server is not None
            return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

        return self.call(start())

    def close(self) -> None:
        async def stop() -> None:
            for runner in reversed(self._runners):
                server = runner.server
                open_transports = [c.transport for c in server.connections] if server else []
                await runner.cleanup()
                # A client that still holds a connection (say, in an exception's response)
                # never answers TLS close_notify: abort instead of waiting for it.
                for transport in open_transports:
                    if transport is not None:
                        transport.abort()
            # Let the transports' close callbacks run before the loop goes away.
            for _ in range(5):
                await asyncio.sleep(0.02)

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class Receiver:
    """A subscriber's endpoint: answers the handshake and records what Graph posts."""

    handshake: str = "ok"  # "ok", "wrong" (echo garbage), "500", "slow"
    fail_first: int = 0  # answer this many notification POSTs with 500 first
    received: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    attempts: int = 0
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            self.tokens.append(token)
            if self.handshake == "500":
                return web.Response(status=500)
            if self.handshake == "slow":
                await asyncio.sleep(5)
            body = token if self.handshake != "wrong" else "not-the-token"
            return web.Response(text=body, content_type="text/plain")
        self.attempts += 1
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500)
        self.received.append(await request.json())
        return web.Response(status=202)

    def items(self) -> list[dict[str, Any]]:
        return [item for body in self.received for item in body["value"]]


@dataclass
class Harness:
    """A running emulator (and its receivers) for one test."""

    bg: BackgroundLoop
    ca_dir: Path
    url: str
    app: web.Application

    @property
    def state(self) -> GraphEmulator:
        return self.app[EMULATOR_KEY]

    @property
    def ca_file(self) -> str:
        return str(self.ca_dir / "ca.pem")

    def receiver(self, path: str = "/graph/notifications", **kwargs: Any) -> Receiver:
        rx = Receiver(**kwargs)
        port = self.bg.serve(rx.app())
        rx.url = f"http://127.0.0.1:{port}{path}"
        return rx

    def control(self, method: str, path: str, json: Any = None) -> httpx.Response:
        with httpx.Client(verify=client_context(self.ca_dir)) as c:
            return c.request(method, f"{self.url}{path}", json=json)

    def idle(self) -> None:
        """Wait for every pending notification delivery to finish."""
        self.bg.call(self.state.delivery.idle())

    def app_token(self) -> str:
        with httpx.Client(verify=client_context(self.ca_dir)) as c:
            resp = c.post(
                f"{self.url}/{TENANT}/oauth2/v2.0/token",
                data={"grant_type": "client_credentials", "client_id": "emulator-app",
                      "client_secret": "emulator-secret",
                      "scope": "https://graph.microsoft.com/.default"},
            )  # fmt: skip
        resp.raise_for_status()
        return str(resp.json()["access_token"])


def wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def start_emulator(
    ca_dir: Path,
    *,
    faults: GraphFaults | None = None,
    options: GraphOptions | None = None,
    scenario: dict[str, Any] | None = None,
) -> tuple[BackgroundLoop, Harness]:

    ensure_ca(ca_dir)
    bg = BackgroundLoop()
    clock = Clock()
    world = World(parse(scenario or SCENARIO), clock=clock)
    app = create_app(
        world, clock=clock, faults=faults, options=options or fast_options(), ca_dir=ca_dir
    )
    port = bg.serve(app, server_context(ca_dir))
    return bg, Harness(bg, ca_dir, f"https://127.0.0.1:{port}", app)


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[Harness]:
    """A Graph emulator with the test scenario and short timings."""
    bg, harness = start_emulator(tmp_path / "ca")
    try:
        yield harness
    finally:
        bg.close()
