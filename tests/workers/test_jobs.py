"""The RQ jobs: notifications run through a real worker; the push job records its outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq import Queue, Retry, SimpleWorker
from rq.serializers import JSONSerializer

from core.exceptions import UpstreamPermanent
from core.settings import Settings
from tests.workers.fake_graph import ALICE, TENANT, FakeGraph
from tests.workers.test_pipeline import cr_payload, external_meeting
from workers import context, jobs, users
from workers.ledger import Ledger
from workers.pipeline import Pipeline


@pytest.fixture
def ctx(redis_conn: redis.Redis) -> Iterator[context.WorkerContext]:
    settings = Settings(graph_tenant_id=TENANT, internal_domains=("contoso.com",))
    worker_ctx = context.WorkerContext(settings, redis_conn)
    context.install(worker_ctx)
    users.add(redis_conn, users.EciUser(id=ALICE, upn="alice@contoso.com"))
    yield worker_ctx
    context.reset()


def run_all(conn: redis.Redis) -> None:
    q = Queue("ingest", connection=conn, serializer=JSONSerializer)
    SimpleWorker([q], connection=conn, serializer=JSONSerializer).work(
        burst=True, logging_level="ERROR"
    )


class TestHandleNotification:
    """A notification job runs the pipeline; a permanent Graph error ends it as failed."""

    def test_through_worker(
        self, ctx: context.WorkerContext, redis_conn: redis.Redis, monkeypatch: Any
    ) -> None:
        m = external_meeting()
        graph = FakeGraph(m)
        q = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        monkeypatch.setattr(jobs, "pipeline", lambda c=None: Pipeline(
            redis_conn, ctx.settings, lambda: graph, q))  # fmt: skip
        pushed: list[str] = []

        def push(meeting: Any) -> dict[str, str]:
            pushed.append(meeting.meeting_key)
            return {"meeting": "a01"}

        monkeypatch.setattr("workers.salesforce.stage.push", push)
        q.enqueue("workers.jobs.handle_notification", cr_payload(m))
        q.enqueue("workers.jobs.handle_notification", cr_payload(m, "updated"))
        run_all(redis_conn)
        ledger = Ledger(redis_conn)
        key = ledger.find(m.call_record_id)
        assert key is not None and pushed == [key]
        state = ledger.meeting(key)
        assert state["outcome"] == "pushed"
        assert state["salesforce_ids"] == '{"meeting": "a01"}'
        assert ledger.outcome_counts()["pushed"] == 1
        assert graph.served[m.key] == 1

    def test_forbidden(
        self, ctx: context.WorkerContext, redis_conn: redis.Redis, monkeypatch: Any
    ) -> None:
        m = external_meeting()
        graph = FakeGraph(m)
        graph.forbidden.add("meetingByJoinUrl")
        q = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        monkeypatch.setattr(jobs, "pipeline", lambda c=None: Pipeline(
            redis_conn, ctx.settings, lambda: graph, q))  # fmt: skip
        result = jobs.handle_notification(cr_payload(m))
        assert result["action"] == "failed"
        entry = Ledger(redis_conn).resource("callRecords", m.call_record_id)
        assert "403" in entry["last_error"]


class TestPushMeeting:
    """push_meeting records pushed with the ids, or failed once its retries are spent."""

    def _ready(self, ctx: context.WorkerContext, conn: redis.Redis, monkeypatch: Any) -> str:
        m = external_meeting()
        graph = FakeGraph(m)
        q = Queue("other", connection=conn, serializer=JSONSerializer)
        return Pipeline(conn, ctx.settings, lambda: graph, q).on_call_record(cr_payload(m))[
            "meeting_key"]  # fmt: skip

    def test_permanent(
        self, ctx: context.WorkerContext, redis_conn: redis.Redis, monkeypatch: Any
    ) -> None:
        key = self._ready(ctx, redis_conn, monkeypatch)

        def refuse(meeting: Any) -> dict[str, str]:
            raise UpstreamPermanent("Salesforce: field Text__c is not writable")

        monkeypatch.setattr("workers.salesforce.stage.push", refuse)
        assert jobs.push_meeting(key)["action"] == "failed"
        state = Ledger(redis_conn).meeting(key)
        assert state["outcome"] == "failed"
        assert "Text__c" in state["last_error"]

    def test_transient_then_spent(
        self, ctx: context.WorkerContext, redis_conn: redis.Redis, monkeypatch: Any
    ) -> None:
        key = self._ready(ctx, redis_conn, monkeypatch)

        def flaky(meeting: Any) -> dict[str, str]:
            raise RuntimeError("Salesforce 503")

        monkeypatch.setattr("workers.salesforce.stage.push", flaky)
        q = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        q.enqueue("workers.jobs.push_meeting", key, retry=Retry(max=1, interval=600))
        run_all(redis_conn)  # a retry is left (scheduled): no outcome yet
        ledger = Ledger(redis_conn)
        assert "outcome" not in ledger.meeting(key)
        assert "503" in ledger.meeting(key)["last_error"]
        q.enqueue("workers.jobs.push_meeting", key)  # no retries left
        run_all(redis_conn)
        assert ledger.meeting(key)["outcome"] == "failed"
        assert ledger.outcome_counts()["failed"] == 1
