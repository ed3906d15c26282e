"""A Salesforce emulator served over HTTPS from a thread, for tests that use simple-salesforce."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import requests
from aiohttp import web
from simple_salesforce import Salesforce

from emulators.salesforce.app import Config, Emulator
from emulators.tls import server_context


class Server:
    """One emulator on a free port, served from a thread (its SQLite lives in that thread)."""

    def __init__(self, config: Config, ca_dir: Path) -> None:
        self.config, self.ca_dir = config, ca_dir
        self.ready = threading.Event()
        self.port = 0
        self.sessions: list[requests.Session] = []

    def __enter__(self) -> Server:
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)
        return self

    async def _main(self) -> None:
        self.stop = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        runner = web.AppRunner(Emulator(self.config).app(), access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(self.ca_dir))
        await site.start()
        self.port = runner.addresses[0][1]
        self.ready.set()
        await self.stop.wait()
        server = runner.server
        transports = [c.transport for c in server.connections] if server else []
        await runner.cleanup()
        for transport in transports:  # a client that keeps a connection never answers close_notify
            if transport is not None:
                transport.abort()
        for _ in range(3):  # let the transports' close callbacks run before the loop goes
            await asyncio.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        for session in self.sessions:  # close keep-alive connections before the server goes
            session.close()
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def http(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, self.base + path, verify=self.ca_dir / "ca.pem", **kw)

    def token(self) -> str:
        form = {"grant_type": "client_credentials", "client_id": "emulator-app",
                "client_secret": "emulator-secret"}  # fmt: skip
        resp = self.http("POST", "/services/oauth2/token", data=form)
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    def sf(self, token: str | None = None) -> Salesforce:
        session = requests.Session()
        session.verify = str(self.ca_dir / "ca.pem")
        session.trust_env = (
            False  # else REQUESTS_CA_BUNDLE overrides session.verify (requests#3829)
        )
        return Salesforce(instance_url=self.base, session_id=token or self.token(),
                          version="62.0", session=session)  # fmt: skip

    def stats(self) -> dict[str, Any]:
        return dict(self.http("GET", "/_emulator/stats").json())

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        return dict(self.http("GET", "/_emulator/dump").json())

    def faults(self, **changes: Any) -> None:
        assert self.http("POST", "/_emulator/faults", json=changes).status_code == 200
