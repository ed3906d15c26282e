"""Two `web` and two `worker` processes that share nothing but Redis: every notification
becomes one job, whichever receiver it reached (twice, even: Graph redelivers to whichever
process the router picks), and every job runs once, in one of the workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from rq import Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from tests.ingest import payloads as p
from tests.paas.procs import Process, Receiver, running, wait_for
from workers import registry

MEETINGS = [f"m{i}" for i in range(1, 9)]


def outcome(conn: redis.Redis, cr_id: str) -> bytes | None:
    key = conn.get(f"ingest:ledger:alias:cr:{cr_id}")
    if key is None:
        return None
    value = conn.hget(f"ingest:ledger:meeting:{key.decode()}", "outcome")
    return value if isinstance(value, bytes) else None


@pytest.mark.timeout(180)
def test_two_receivers_two_workers_one_redis(
    redis_url: str, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    # Organisers who are not ECI users: each job reads Graph, decides "skipped", and ends.
    doc = scenario(*(meeting(m, organizer="bob@contoso.com") for m in MEETINGS))
    with Stack(doc, redis_url, tmp_path) as stack:
        stack.play(*MEETINGS)
        tenant = stack.world.tenant_id
        registry.mark(redis_conn)
        registry.save(redis_conn, registry.Subscription(
            id=p.CR_SUB, resource="communications/callRecords", kind="callRecords",
            client_state=p.CR_STATE, tenant_id=tenant, expires_at="2099-01-01T00:00:00+00:00",
        ))  # fmt: skip
        env = stack.env()
        receivers = [Receiver(env, tmp_path / f"web{i}.log").start() for i in (1, 2)]
        workers = [Process(["worker"], env, tmp_path / f"worker{i}.log").start() for i in (1, 2)]
        with running(*receivers, *workers):
            for receiver in receivers:
                receiver.wait_listening()
            cr_ids = [stack.world.call_record_id(m) for m in MEETINGS]
            for i, cr_id in enumerate(cr_ids):
                body = json.dumps(p.body(p.call_record(cr_id=cr_id, tenantId=tenant))).encode()
                first, second = receivers[i % 2], receivers[(i + 1) % 2]
                assert first.post("/graph/notifications", body) == 202, first.stderr()
                assert second.post("/graph/notifications", body) == 202, second.stderr()

            def all_done() -> bool:
                return all(outcome(redis_conn, cr) == b"skipped" for cr in cr_ids)

            logs = "\n".join(proc.stderr() for proc in (*receivers, *workers))
            assert wait_for(all_done, 90), logs
            alive = Worker.all(connection=redis_conn, serializer=JSONSerializer)
            assert len(alive) == 2
            ran = sum(w.successful_job_count for w in alive)
            failed = sum(w.failed_job_count for w in alive)
            for proc in (*receivers, *workers):
                proc.sigterm()
            for proc in (*receivers, *workers):
                assert proc.wait(30) == 0, proc.stderr()

    jobs = {key for key in redis_conn.scan_iter("rq:job:*") if b":" not in key[len(b"rq:job:") :]}
    # One job per notification, though each reached both receivers.
    assert len(jobs) == len(MEETINGS)
    # Each ran once: the workers' counts add up to the jobs, and none failed or is left running.
    assert (ran, failed) == (len(MEETINGS), 0)
    assert FailedJobRegistry("ingest", connection=redis_conn).count == 0
    assert StartedJobRegistry("ingest", connection=redis_conn).count == 0
