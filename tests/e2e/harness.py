"""An end-to-end stack in one test process: Graph emulator (HTTPS) and receiver on a background
loop, `ingest subscriptions ensure` through the real msgraph client, and in-process workers."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import redis
from aiohttp import web

from core.settings import Settings
from emulators import scenario as scenario_mod
from emulators.graph.app import create_app as create_graph
from emulators.graph.clock import Clock
from emulators.graph.faults import GraphFaults
from emulators.graph.options import GraphOptions
from emulators.graph.world import World
from emulators.salesforce.app import Config
from emulators.tls import client_context, ensure_ca, server_context
from ingest.app import create_app as create_receiver
from tests.emulators.salesforce_harness import Server
from tests.ports import bound_socket, port_of
from workers import context, users
from workers.subscriptions import GraphSubscriptions, Manager
from workers.worker import build_worker


class Stack:
    """Emulator + receiver on a background loop; settings for the product pointed at them."""

    def __init__(
        self,
        doc: dict[str, Any],
        redis_url: str,
        tmp: Path,
        salesforce: bool = False,
        **settings: Any,
    ) -> None:
        """`salesforce`: also run the Salesforce emulator (seeded from the scenario) and point
        the product's Salesforce settings at it, so that pushes go through the real stage."""
        self.scenario = scenario_mod.parse(doc)
        self.clock = Clock()
        self.world = World(self.scenario, clock=self.clock)
        self.faults = GraphFaults()
        self.options = GraphOptions(updated_delay_s=0.3, retry_base_s=0.2, transcript_poll_s=0.1)
        self.ca_dir = tmp / "ca"
        ensure_ca(self.ca_dir)
        # Bound now, served later: nothing else can take the ports in between.
        self._sockets = (bound_socket(), bound_socket())
        self.graph_port, self.receiver_port = (port_of(s) for s in self._sockets)
        self.salesforce: Server | None = None
        if salesforce:
            self.salesforce = Server(Config(seed=self.scenario.salesforce), self.ca_dir)
            self.salesforce.__enter__()
            settings.setdefault("sf_instance_url", self.salesforce.base)
            settings.setdefault("sf_client_id", "emulator-app")
            settings.setdefault("sf_client_secret", "emulator-secret")
        self.settings = Settings(
            redis_url=redis_url,
            public_url=f"http://127.0.0.1:{self.receiver_port}",
            graph_tenant_id=self.world.tenant_id,
            graph_allowed_tenants=(self.world.tenant_id.lower(),),
            graph_client_id="emulator-app",
            graph_client_secret="emulator-secret",
            graph_base_url=f"https://127.0.0.1:{self.graph_port}/v1.0",
            graph_authority=f"https://127.0.0.1:{self.graph_port}",
            ca_bundle=self.ca_dir / "ca.pem",
            internal_domains=settings.pop("internal_domains", tuple(self.scenario.tenant.domains)),
            transcript_window_seconds=settings.pop("window", 30.0),
            transcript_first_interval_seconds=settings.pop("first", 0.5),
            **settings,
        )
        self.conn = redis.Redis.from_url(redis_url)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runners: list[web.AppRunner] = []
        self.graph_app: web.Application | None = None

    # lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        self._thread.start()
        self._call(self._start())
        for user in self.scenario.users:
            if user.eci:
                users.add(self.conn, users.EciUser(id=user.id, upn=user.upn, name=user.name))
        context.install(context.WorkerContext(self.settings, self.conn))
        return self

    def __exit__(self, *exc: object) -> None:
        context.reset()
        if self.salesforce is not None:
            self.salesforce.__exit__(None, None, None)
        self._call(self._stop())
        for sock in self._sockets:  # served ones are closed already; this is for a failed start
            sock.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self.conn.close()

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(60)

    async def _start(self) -> None:
        graph = create_graph(self.world, clock=self.clock, faults=self.faults,
                             options=self.options, ca_dir=self.ca_dir)  # fmt: skip
        self.graph_app = graph  # tests shrink its page sizes (emulators.graph.data)
        receiver = create_receiver(self.settings)
        graph_sock, receiver_sock = self._sockets
        for app, sock, tls in ((graph, graph_sock, server_context(self.ca_dir)),
                               (receiver, receiver_sock, None)):  # fmt: skip
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, sock, ssl_context=tls).start()
            self._runners.append(runner)

    async def _stop(self) -> None:
        for runner in reversed(self._runners):
            server = runner.server
            transports = [c.transport for c in server.connections] if server else []
            await runner.cleanup()
            # A client that still holds a connection (azure-identity's, after a refused token
            # request) never answers TLS close_notify: abort instead of leaving it open.
            for transport in transports:
                if transport is not None:
                    transport.abort()
        await asyncio.sleep(0.02)  # let the aborted transports' close callbacks run

    # the emulator's control routes -------------------------------------------------------
    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.graph_port}/_emulator/{path}", data=data,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        ctx: ssl.SSLContext = client_context(self.ca_dir)
        with urllib.request.urlopen(request, context=ctx, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("stats")
        return result

    def play(self, *ids: str) -> None:
        self.control("play", {"meetings": list(ids)} if ids else {})

    def set_faults(self, **changes: Any) -> None:
        self.control("faults", changes)

    # the product -------------------------------------------------------------------------
    def ensure_subscriptions(self) -> list[dict[str, Any]]:
        api = GraphSubscriptions(self.settings)
        try:
            return Manager(self.settings, self.conn, api).ensure()
        finally:
            api.close()

    def drop_subscriptions(self, kind: str) -> None:
        """Delete our subscriptions of one kind, so that only the other path is notified."""
        from workers import registry

        api = GraphSubscriptions(self.settings)
        try:
            for sub in registry.load_all(self.conn):
                if sub.kind == kind:
                    api.delete(sub.id)
                    registry.remove(self.conn, sub.id)
        finally:
            api.close()

    def work(self, until: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Run burst workers (scheduler included) until `until()` or the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            build_worker(self.settings, self.conn).work(
                burst=True, with_scheduler=True, logging_level="ERROR"
            )
            if until():
                return True
            time.sleep(0.1)
        return until()

    def env(self) -> dict[str, str]:
        """The product's settings as the environment of an `ingest` process (Salesforce is
        named but never reached: these runs end before a push)."""
        s = self.settings
        return {
            "REDIS_URL": s.redis_url,
            "GRAPH_TENANT_ID": str(s.graph_tenant_id),
            "GRAPH_CLIENT_ID": str(s.graph_client_id),
            "GRAPH_CLIENT_SECRET": str(s.graph_client_secret),
            "GRAPH_BASE_URL": s.graph_base_url,
            "GRAPH_AUTHORITY": s.graph_authority,
            "INGEST_CA_BUNDLE": str(s.ca_bundle),
            "INTERNAL_DOMAINS": ",".join(s.internal_domains),
            "SF_INSTANCE_URL": "https://127.0.0.1:9",
            "SF_CLIENT_ID": "emulator-app",
            "SF_CLIENT_SECRET": "emulator-secret",
        }

    def salesforce_records(self, sobject: str) -> list[dict[str, Any]]:
        """Every record of `sobject` in the Salesforce emulator."""
        assert self.salesforce is not None, "Stack(..., salesforce=True)"
        records: list[dict[str, Any]] = self.salesforce.dump().get(sobject, [])
        return records

    def graph_requests(self) -> dict[str, int]:
        """Graph API requests by route, tokens and the emulator's identity routes aside."""
        requests: dict[str, int] = self.stats()["requests"]
        return {k: v for k, v in requests.items() if "/v1.0/" in k and "subscriptions" not in k}
