"""The connect flow's pieces without Microsoft: the vault, the state cookie, and the pages."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from core import vault
from core.settings import Settings
from ingest import connect
from ingest.app import create_app
from workers import oauth, users

KEY = "a-test-secret-key-of-some-length"


class TestRemoveForgetsTokens:
    """Removing a user from the registry (`ingest users remove`) also drops their tokens."""

    def test_remove(self, redis_conn: redis.Redis) -> None:
        users.add(redis_conn, users.EciUser(id="u-1", upn="u@contoso.com", source="connect"))
        vault.save_token_cache(redis_conn, vault.token_cache_vault(KEY), "u-1", "{}")
        assert users.remove(redis_conn, "u@contoso.com") is not None
        assert redis_conn.exists("ingest:tokens:u-1") == 0


class TestScopes:
    """The flow asks for exactly DESIGN §6's delegated scopes plus the OIDC ones."""

    def test_scopes(self) -> None:
        assert set(oauth.MSAL_SCOPES) | {"openid", "profile", "offline_access"} == {
            "Calendars.Read", "Files.Read", "OnlineMeetingArtifact.Read.All",
            "OnlineMeetings.Read", "OnlineMeetingTranscript.Read.All", "User.Read",
            "openid", "profile", "email", "offline_access",
        }  # fmt: skip


def configured(settings: Settings) -> Settings:
    return replace(
        settings,
        secret_key=KEY,
        public_url="http://127.0.0.1:8000",
        graph_client_id="app",
        graph_client_secret="s3cret",
    )


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(create_app(configured(settings)))) as c:
        yield c


def sealed_state(doc: dict[str, object], clock: float | None = None) -> str:
    v = vault.Vault(KEY, vault.CONNECT_STATE, clock=(lambda: clock) if clock else time.time)
    return v.seal(json.dumps(doc).encode()).decode()


class TestCallbackErrors:
    """A bad callback answers a readable page and a log event, never a stack trace or a store."""

    async def test_missing_cookie(
        self, app_client: TestClient[web.Request, web.Application]
    ) -> None:
        with capture_logs() as logs:
            resp = await app_client.get("/auth/callback?code=c&state=s")
        text = await resp.text()
        assert resp.status == 400 and "Sign-in session not found" in text
        assert "Traceback" not in text and resp.content_type == "text/html"
        assert any(e["event"] == "connect_state_missing" for e in logs)

    async def test_tampered_cookie(
        self, app_client: TestClient[web.Request, web.Application]
    ) -> None:
        good = sealed_state({"kind": "user", "flow": {"state": "s"}})
        bad = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
        app_client.session.cookie_jar.update_cookies({connect.STATE_COOKIE: bad})
        with capture_logs() as logs:
            resp = await app_client.get("/auth/callback?code=c&state=s")
        assert resp.status == 400 and "could not be verified" in await resp.text()
        assert any(e.get("event_type") == "connect_state_invalid" for e in logs)

    async def test_expired_cookie(
        self, app_client: TestClient[web.Request, web.Application]
    ) -> None:
        old = sealed_state({"kind": "user", "flow": {"state": "s"}}, clock=1_000_000_000.0)
        app_client.session.cookie_jar.update_cookies({connect.STATE_COOKIE: old})
        resp = await app_client.get("/auth/callback?code=c&state=s")
        assert resp.status == 400 and "expired" in await resp.text()

    async def test_state_mismatch(
        self, app_client: TestClient[web.Request, web.Application]
    ) -> None:
        cookie = sealed_state({"kind": "user", "flow": {"state": "mine"}})
        app_client.session.cookie_jar.update_cookies({connect.STATE_COOKIE: cookie})
        with capture_logs() as logs:
            resp = await app_client.get("/auth/callback?code=c&state=theirs")
        assert resp.status == 400 and "does not belong" in await resp.text()
        assert any(e.get("event_type") == "connect_state_mismatch" for e in logs)

    async def test_denied_consent(
        self, app_client: TestClient[web.Request, web.Application], redis_conn: redis.Redis
    ) -> None:
        with capture_logs() as logs:
            resp = await app_client.get(
                "/auth/callback?error=access_denied&error_description=%3Cscript%3Ex&state=s"
            )
        text = await resp.text()
        assert resp.status == 400 and "Access was not granted" in text and "<script>" not in text
        assert any(e["event"] == "connect_denied" for e in logs)
        assert redis_conn.keys("ingest:tokens:*") == [] and not redis_conn.exists("ingest:users")

    async def test_other_error_is_escaped(
        self, app_client: TestClient[web.Request, web.Application]
    ) -> None:
        resp = await app_client.get(
            "/auth/callback?error=server_error&error_description=%3Cb%3Eboom%3C/b%3E"
        )
        text = await resp.text()
        assert resp.status == 400 and "&lt;b&gt;boom" in text and "<b>boom" not in text

    async def test_disconnect_without_cookie(
        self, app_client: TestClient[web.Request, web.Application]
    ) -> None:
        resp = await app_client.post("/auth/disconnect")
        assert resp.status == 400 and "sign in again" in (await resp.text()).lower()


class TestNotConfigured:
    """Without the secret key or the Entra app, the flow names what an operator must set."""

    @pytest.mark.parametrize(
        ("change", "variable"),
        [
            ({"secret_key": None}, "INGEST_SECRET_KEY"),
            ({"secret_key": "short"}, "INGEST_SECRET_KEY"),
            ({"graph_client_id": None}, "GRAPH_CLIENT_ID"),
            ({"graph_client_secret": None}, "GRAPH_CLIENT_SECRET"),
            ({"public_url": None}, "INGEST_PUBLIC_URL"),
        ],
    )
    @pytest.mark.parametrize(
        "path", ["/auth/connect", "/auth/callback?code=c", "/auth/admin-consent"]
    )
    async def test_page_names_the_setting(
        self, settings: Settings, change: dict[str, object], variable: str, path: str
    ) -> None:
        app = create_app(replace(configured(settings), **change))  # type: ignore[arg-type]
        async with TestClient(TestServer(app)) as c:
            with capture_logs() as logs:
                resp = await c.get(path, allow_redirects=False)
            text = await resp.text()
        assert resp.status == 503 and variable in text and "Traceback" not in text
        assert any(
            e["event"] == "connect_not_configured" and e["variable"] == variable for e in logs
        )


class TestUnreachable:
    """An identity service that cannot be reached gives a readable 502 page, not a 500."""

    async def test_connect(self, settings: Settings) -> None:
        down = replace(configured(settings), graph_authority="https://127.0.0.1:9")
        async with TestClient(TestServer(create_app(down))) as c:
            with capture_logs() as logs:
                resp = await c.get("/auth/connect", allow_redirects=False)
            text = await resp.text()
        assert resp.status == 502 and "unreachable" in text and "Traceback" not in text
        assert any(e["event"] == "connect_start_failed" for e in logs)


class TestPage:
    """Pages are small HTML documents that escape their title and forbid framing."""

    def test_page(self) -> None:
        resp = connect.page("<x>", "<p>ok</p>", 418)
        assert resp.status == 418 and resp.text is not None
        assert "<title>&lt;x&gt;</title>" in resp.text and "<p>ok</p>" in resp.text
        assert resp.headers["X-Frame-Options"] == "DENY"
