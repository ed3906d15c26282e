"""The ops page over HTTP (aiohttp's test client, a real Redis, real RQ jobs run by the worker)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rq import Queue
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from core import keys, vault
from core.settings import Settings
from ingest import health
from ingest.app import create_app
from ingest.ops_auth import COOKIE, session_key
from ingest.ops_data import FailedCache
from workers import registry, usage
from workers.ledger import Ledger
from workers.worker import build_worker

TOKEN = "ops-token-for-the-tests-0123456789abcdef"
CLIENT_STATE = "client-state-that-must-never-show-0123456789"
SECRET_KEY = "secret-key-for-sealing-0123456789abcdef"
GRAPH_SECRET = "graph-client-secret-never-shown"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def ops_settings(settings: Settings) -> Settings:
    return replace(settings, ops_token=TOKEN, secret_key=SECRET_KEY,
                   graph_client_secret=GRAPH_SECRET)  # fmt: skip


async def _client(settings: Settings) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


@pytest.fixture
async def ops(ops_settings: Settings) -> AsyncIterator[Client]:
    async for c in _client(ops_settings):
        yield c


@pytest.fixture
def queue(redis_conn: redis.Redis) -> Queue:
    return Queue("ingest", connection=redis_conn, serializer=JSONSerializer)


@pytest.fixture
def failed_job(queue: Queue, redis_conn: redis.Redis, settings: Settings) -> Iterator[str]:
    """A job that RQ's worker ran and that failed: `int("not a number")`."""
    job = queue.enqueue("builtins.int", "not a number")
    queue.enqueue("builtins.len", "counted as ok")
    build_worker(settings, redis_conn).work(burst=True, logging_level="ERROR")
    assert FailedJobRegistry(queue=queue).get_job_ids() == [job.id]
    yield job.id


async def sign_in(client: Client) -> tuple[str, str]:
    """Sign in by the form; the session cookie and the page's CSRF token."""
    resp = await client.post("/ops/login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ops"
    cookie = resp.cookies[COOKIE].value
    page = await client.get("/ops", cookies={COOKIE: cookie})
    assert page.status == 200
    found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert found is not None
    return cookie, html.unescape(found.group(1))


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


class TestRequeue:
    """The requeue button puts the failed job back on the queue under its own id."""

    async def test_with_session_and_token(self, ops: Client, queue: Queue, failed_job: str) -> None:
        cookie, csrf = await sign_in(ops)
        resp = await ops.post("/ops/requeue", data={"job_id": failed_job, "csrf": csrf},
                              cookies={COOKIE: cookie}, allow_redirects=False)  # fmt: skip
        assert resp.status == 303 and resp.headers["Location"] == "/ops?note=requeued"
        assert FailedJobRegistry(queue=queue).count == 0
        assert queue.job_ids == [failed_job]
        page = await (await ops.get(resp.headers["Location"], cookies={COOKIE: cookie})).text()
        assert "Job requeued" in page

    async def test_by_bearer(self, ops: Client, queue: Queue, failed_job: str) -> None:
        resp = await ops.post("/ops/requeue", data={"job_id": failed_job},
                              headers={"Authorization": f"Bearer {TOKEN}"},
                              allow_redirects=False)  # fmt: skip
        assert resp.status == 303 and queue.job_ids == [failed_job]

    def test_a_job_that_failed_again_is_described_again(
        self, queue: Queue, redis_conn: redis.Redis, settings: Settings, failed_job: str
    ) -> None:
        cache = FailedCache()
        [first] = cache.failed(redis_conn, queue, 50)
        assert (first.id, first.attempts) == (failed_job, 1)
        assert cache.failed(redis_conn, queue, 50) == [first]
        FailedJobRegistry(queue=queue).requeue(failed_job)
        assert cache.failed(redis_conn, queue, 50) == []
        build_worker(settings, redis_conn).work(burst=True, logging_level="CRITICAL")
        [again] = cache.failed(redis_conn, queue, 50)
        assert (again.id, again.attempts) == (failed_job, 2)

    async def test_an_unknown_job(self, ops: Client, queue: Queue, failed_job: str) -> None:
        cookie, csrf = await sign_in(ops)
        resp = await ops.post("/ops/requeue", data={"job_id": "nope", "csrf": csrf},
                              cookies={COOKIE: cookie}, allow_redirects=False)  # fmt: skip
        assert resp.headers["Location"] == "/ops?note=gone"
        assert FailedJobRegistry(queue=queue).get_job_ids() == [failed_job]


def seed(conn: redis.Redis, settings: Settings) -> None:
    """Data written by the product's own writers, as a running system leaves it."""
    expires = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    registry.save(conn, registry.Subscription(
        id="sub-1", resource="communications/callRecords", kind="callRecords",
        client_state=CLIENT_STATE, tenant_id=settings.graph_tenant_id or "", expires_at=expires,
    ))  # fmt: skip
    health.renewed(conn, "sub-1")
    ledger = Ledger(conn)
    ledger.update("meeting-1", subject="Quarterly review", decision="eligible",
                  reason="external_participants", online_meeting_id="om-1")  # fmt: skip
    ledger.point("om", "om-1", "meeting-1")
    ledger.set_outcome("meeting-1", "pushed")
    cache = '{"RefreshToken": {"x": {"secret": "refresh-token-value"}}}'
    vault.save_token_cache(conn, vault.token_cache_vault(SECRET_KEY), "user-1", cache)
    for service, hits in ((usage.GRAPH, 7), (usage.SALESFORCE, 3)):
        counter = usage.CallCounter(conn, service)
        for _ in range(hits):
            counter.hit()


class TestPanels:
    """Every panel shows what the product wrote; nothing secret is ever on the page."""

    async def test_panels_and_no_secrets(
        self, ops: Client, redis_conn: redis.Redis, ops_settings: Settings, failed_job: str
    ) -> None:
        seed(redis_conn, ops_settings)
        cookie, _ = await sign_in(ops)
        resp = await ops.get("/ops?meeting=om-1", cookies={COOKIE: cookie})
        body = await resp.text()
        assert resp.status == 200
        assert "script-src 'nonce-" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Cache-Control"] == "no-store"
        assert "sub-1" in body and 'data-left="' in body and "expires within 1 h" in body
        assert failed_job in body and "ValueError" in body and "Requeue" in body
        assert "Quarterly review" in body and "external_participants" in body
        assert 'id="graph-calls">7<' in body and 'id="salesforce-calls">3<' in body
        assert body.count('class="ok"') >= 1 and '<rect class="failed"' in body
        assert "1 failed jobs" in body and "no worker is running" in body
        assert 'id="story"' in body and "Outcome: pushed" in body
        for secret in (TOKEN, CLIENT_STATE, SECRET_KEY, GRAPH_SECRET, cookie,
                       "refresh-token-value", "RefreshToken"):  # fmt: skip
            assert secret not in body

    async def test_a_failed_job_is_read_once_across_loads(
        self, ops: Client, redis_conn: redis.Redis, failed_job: str
    ) -> None:
        """A page polled every second must stay cheap: the failed job's results stream (read
        with XREVRANGE, by `ingest dlq`'s describe alone) is read at the first load only."""

        def reads() -> int:
            stats = redis_conn.info("commandstats").get("cmdstat_xrevrange", {})
            return int(stats.get("calls", 0))

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        before = reads()
        for _ in range(3):
            assert failed_job in await (await ops.get("/ops", headers=bearer)).text()
        assert reads() - before == 1

    async def test_an_unknown_meeting(self, ops: Client) -> None:
        resp = await ops.get("/ops?meeting=nope", headers={"Authorization": f"Bearer {TOKEN}"})
        body = await resp.text()
        assert "no meeting nope in the ledger" in body

    async def test_calls_are_counted_per_day(self, redis_conn: redis.Redis) -> None:
        day = datetime(2026, 11, 30, 23, 59, tzinfo=UTC).timestamp()
        usage.CallCounter(redis_conn, usage.GRAPH, clock=lambda: day).hit()
        usage.CallCounter(redis_conn, usage.GRAPH, clock=lambda: day + 120).hit()
        assert usage.calls_today(redis_conn, day) == {"graph": 1, "salesforce": 0}
        assert usage.calls_today(redis_conn, day + 120) == {"graph": 1, "salesforce": 0}
        assert 0 < redis_conn.ttl(usage.calls_key(usage.GRAPH, day)) <= 3 * 86400

    async def test_latest_meetings_are_bounded(self, redis_conn: redis.Redis) -> None:
        ledger = Ledger(redis_conn)
        for i in range(55):
            ledger.set_outcome(f"m{i}", "skipped")
        latest = ledger.latest()
        assert len(latest) == 50 and latest[0] == "m54" and "m4" not in latest
        assert redis_conn.zcard(keys.LATEST_MEETINGS) == 50
