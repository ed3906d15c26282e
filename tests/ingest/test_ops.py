"""The ops page's panels and its requeue action over HTTP (real Redis, real RQ jobs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from rq import Queue
from rq.registry import FailedJobRegistry

from core import keys, vault
from core.settings import Settings
from ingest import health
from ingest.checkup import store as checkup_store
from ingest.ops_auth import COOKIE
from ingest.ops_data import FailedCache
from tests.ingest.ops_client import CLIENT_STATE, GRAPH_SECRET, SECRET_KEY, TOKEN, Client, sign_in
from tests.ingest.ops_client import failed_job as failed_job  # fixtures
from tests.ingest.ops_client import ops as ops
from tests.ingest.ops_client import ops_settings as ops_settings
from tests.ingest.ops_client import queue as queue
from workers import registry, usage
from workers.ledger import Ledger
from workers.worker import build_worker


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
        assert "settings not set: GRAPH_CLIENT_ID" in body  # the doctor's cheap checks
        [persistence] = checkup_store.persistence(redis_conn)
        assert ("redis persistence: " in body) is not persistence.ok
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
