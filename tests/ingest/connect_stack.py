"""The Graph emulator and the receiver on one background loop, set up for the connect flow."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
from aiohttp import web

from core import vault
from core.settings import Settings
from emulators.graph.options import GraphOptions
from emulators.tls import client_context
from ingest.app import create_app
from tests.emulators.graph_harness import ALICE, TENANT, Harness, start_emulator
from tests.ports import bound_socket, port_of
from workers import registry, users

KEY = "connect-flow-test-secret-key"
HIDDEN = r'<input type="hidden" name="([^"]+)" value="([^"]*)">'


class Stack:
    """A running emulator and receiver; `url` is the receiver's base."""

    def __init__(self, graph: Harness, settings: Settings, conn: redis.Redis) -> None:
        self.graph, self.settings, self.conn = graph, settings, conn
        self.url = str(settings.public_url)

    def client(self) -> httpx.Client:
        """A browser stand-in: keeps cookies, trusts the emulator's CA, follows nothing."""
        return httpx.Client(verify=client_context(self.graph.ca_dir), timeout=30)

    def sign_in(self, c: httpx.Client, *, user: str | None = ALICE) -> httpx.Response:
        """/auth/connect, press a user's button (None: Cancel), then land on the callback."""
        start = c.get(f"{self.url}/auth/connect")
        assert start.status_code == 302, start.text
        auth_uri = start.headers["Location"]
        page = c.get(auth_uri)
        assert page.status_code == 200, page.text
        fields = {k: html.unescape(v) for k, v in re.findall(HIDDEN, page.text)}
        fields.update({"user": user} if user else {"action": "cancel"})
        back = c.post(auth_uri.split("?")[0], data=fields)
        assert back.status_code == 302 and back.headers["Location"].startswith(self.url)
        return c.get(back.headers["Location"])

    def transcript_subscriptions(self, user_id: str = ALICE) -> tuple[list[str], list[str]]:
        """Ids of the user's transcript subscription in the registry and in the emulator."""
        resource = f"users/{user_id}/onlineMeetings/getAllTranscripts".lower()
        mine = [s.id for s in registry.load_all(self.conn) if s.resource.lower() == resource]
        held = self.graph.control("GET", "/_emulator/subscriptions").json()
        held = held.get("value", held) if isinstance(held, dict) else held
        graph = [str(s["id"]) for s in held if str(s.get("resource", "")).lower() == resource]
        return mine, graph

    def stored_cache(self, user_id: str = ALICE) -> tuple[bytes | None, str | None]:
        raw: bytes | None = self.conn.get(vault.TOKENS_PREFIX + user_id)  # type: ignore[assignment]
        plain = vault.load_token_cache(self.conn, vault.token_cache_vault(KEY), user_id)
        return raw, plain

    def nothing_stored(self) -> bool:
        return users.all_users(self.conn) == [] and self.conn.keys(vault.TOKENS_PREFIX + "*") == []


@contextmanager
def running(
    tmp: Path, redis_url: str, options: GraphOptions | None = None, **changes: Any
) -> Iterator[Stack]:
    bg, graph = start_emulator(tmp / "ca", options=options)
    sock = bound_socket()  # held until the receiver serves it: no other bind can take it
    port = port_of(sock)
    fields: dict[str, Any] = {
        "redis_url": redis_url,
        "public_url": f"http://127.0.0.1:{port}",
        "secret_key": KEY,
        "graph_tenant_id": TENANT,
        "graph_allowed_tenants": (TENANT,),
        "graph_client_id": "emulator-app",
        "graph_client_secret": "emulator-secret",
        "graph_base_url": f"{graph.url}/v1.0",
        "graph_authority": graph.url,
        "ca_bundle": Path(graph.ca_file),
    }
    settings = Settings(**{**fields, **changes})
    runner = web.AppRunner(create_app(settings), access_log=None, handle_signals=False)

    async def start() -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()

    conn = redis.Redis.from_url(redis_url)
    try:
        bg.call(start())
        yield Stack(graph, settings, conn)
    finally:
        bg.call(runner.cleanup())
        sock.close()
        conn.close()
        bg.close()
