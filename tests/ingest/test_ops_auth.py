"""Who may use the ops page: off without a token, sign-in, bearer, cookie flags, CSRF."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry

from core.settings import Settings
from ingest.ops_auth import COOKIE, session_key
from tests.ingest.ops_client import TOKEN, Client, _client, sign_in
from tests.ingest.ops_client import failed_job as failed_job  # fixtures
from tests.ingest.ops_client import ops as ops
from tests.ingest.ops_client import ops_settings as ops_settings
from tests.ingest.ops_client import queue as queue


class TestOff:
    """Without INGEST_OPS_TOKEN the page and its actions do not exist."""

    async def test_every_route_is_404(self, settings: Settings) -> None:
        async for c in _client(settings):
            assert (await c.get("/ops")).status == 404
            headers = {"Authorization": f"Bearer {TOKEN}"}
            assert (await c.get("/ops", headers=headers)).status == 404
            for path in ("/ops/login", "/ops/logout", "/ops/requeue"):
                assert (await c.post(path, data={"token": TOKEN})).status == 404


class TestRedisDown:
    """While Redis does not answer, the page says so with 503 (never a 500)."""

    async def test_503(self, ops_settings: Settings) -> None:
        async for c in _client(replace(ops_settings, redis_url="redis://127.0.0.1:1/0")):
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            answers = (
                await c.get("/ops", headers=bearer),
                await c.get("/ops", cookies={COOKIE: "some-session"}),
                await c.post("/ops/login", data={"token": TOKEN}),
                await c.post("/ops/requeue", data={"job_id": "x"}, headers=bearer),
            )
            for resp in answers:
                assert resp.status == 503, await resp.text()
                assert "Redis does not answer" in await resp.text()


class TestSignIn:
    """The token opens the page, by form (then a strict cookie) or bearer; nothing else does."""

    async def test_401_without_session_shows_the_form(self, ops: Client) -> None:
        resp = await ops.get("/ops")
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="ops"'
        body = await resp.text()
        assert 'action="/ops/login"' in body and 'type="password"' in body
        assert "Subscriptions" not in body

    async def test_bearer_opens_the_page(self, ops: Client) -> None:
        resp = await ops.get("/ops", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200 and "Subscriptions" in await resp.text()
        assert "Set-Cookie" not in resp.headers

    @pytest.mark.parametrize(
        "header", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer "]
    )
    async def test_a_wrong_bearer_is_refused(self, ops: Client, header: str) -> None:
        assert (await ops.get("/ops", headers={"Authorization": header})).status == 401

    async def test_a_wrong_bearer_beside_a_valid_cookie_is_refused(self, ops: Client) -> None:
        cookie, _ = await sign_in(ops)
        resp = await ops.get("/ops", cookies={COOKIE: cookie},
                             headers={"Authorization": "Bearer nope"})  # fmt: skip
        assert resp.status == 401

    @pytest.mark.parametrize("token", ["", "wrong", TOKEN + " ", TOKEN.upper()])
    async def test_a_wrong_token_gets_no_session(self, ops: Client, token: str) -> None:
        resp = await ops.post("/ops/login", data={"token": token}, allow_redirects=False)
        assert resp.status == 401 and COOKIE not in resp.cookies
        assert "That is not the ops token." in await resp.text()

    async def test_cookie_flags(self, ops: Client, redis_conn: redis.Redis) -> None:
        resp = await ops.post("/ops/login", data={"token": TOKEN}, allow_redirects=False)
        raw = resp.headers["Set-Cookie"]
        assert "HttpOnly" in raw and "SameSite=Strict" in raw and "Path=/ops" in raw
        assert "Secure" not in raw  # the test's public URL is not https
        session = resp.cookies[COOKIE].value
        # Redis holds the session's digest, never the cookie itself.
        assert redis_conn.exists(session_key(session)) == 1
        assert not any(session.encode() in k for k in redis_conn.keys("*"))
        assert 0 < redis_conn.ttl(session_key(session)) <= 8 * 3600

    async def test_cookie_is_secure_behind_https(self, ops_settings: Settings) -> None:
        async for c in _client(replace(ops_settings, public_url="https://ops.example.com")):
            resp = await c.post("/ops/login", data={"token": TOKEN}, allow_redirects=False)
            assert "Secure" in resp.headers["Set-Cookie"]

    async def test_an_unknown_cookie_is_refused(self, ops: Client) -> None:
        assert (await ops.get("/ops", cookies={COOKIE: "made-up"})).status == 401

    async def test_sign_out_ends_the_session_on_the_server(
        self, ops: Client, redis_conn: redis.Redis
    ) -> None:
        cookie, csrf = await sign_in(ops)
        resp = await ops.post("/ops/logout", data={"csrf": csrf}, cookies={COOKIE: cookie})
        assert resp.status == 200 and "Signed out." in await resp.text()
        assert resp.cookies[COOKIE].value == ""
        assert redis_conn.exists(session_key(cookie)) == 0
        assert (await ops.get("/ops", cookies={COOKIE: cookie})).status == 401


class TestCsrf:
    """An action without its session's CSRF token is refused with 403 and changes nothing."""

    @pytest.mark.parametrize("forged", [None, "", "forged-token", "other-session"])
    async def test_requeue_refused(
        self, ops: Client, queue: Queue, failed_job: str, forged: str | None
    ) -> None:
        cookie, csrf = await sign_in(ops)
        if forged == "other-session":
            _, forged = await sign_in(ops)
            assert forged != csrf
        data = {"job_id": failed_job} if forged is None else {"job_id": failed_job, "csrf": forged}
        resp = await ops.post("/ops/requeue", data=data, cookies={COOKIE: cookie},
                              allow_redirects=False)  # fmt: skip
        assert resp.status == 403
        assert FailedJobRegistry(queue=queue).get_job_ids() == [failed_job]
        assert queue.count == 0

    async def test_sign_out_without_token_keeps_the_session(
        self, ops: Client, redis_conn: redis.Redis
    ) -> None:
        cookie, _ = await sign_in(ops)
        resp = await ops.post("/ops/logout", data={"csrf": "x"}, cookies={COOKIE: cookie})
        assert resp.status == 403 and redis_conn.exists(session_key(cookie)) == 1

    async def test_no_session_no_action(self, ops: Client, queue: Queue, failed_job: str) -> None:
        resp = await ops.post("/ops/requeue", data={"job_id": failed_job, "csrf": "x"})
        assert resp.status == 401
        assert FailedJobRegistry(queue=queue).get_job_ids() == [failed_job]
