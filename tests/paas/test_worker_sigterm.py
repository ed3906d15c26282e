"""A SIGTERMed `ingest worker` finishes the job it runs (RQ's warm shutdown) and exits within
Heroku's 30 s: no job is lost or run twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from tests.ingest.test_cli import configured
from tests.paas.procs import Process, running, wait_for

HEROKU_GRACE_SECONDS = 30
JOB_SECONDS = 4.0


@pytest.mark.timeout(90)
def test_sigterm_mid_job_lets_it_finish(
    redis_url: str, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
    job = queue.enqueue("tests.paas.jobs.slow", "a", JOB_SECONDS, retry=Retry(max=2),
                        job_timeout=60)  # fmt: skip
    worker = Process(["worker"], configured(redis_url), tmp_path / "worker.log")
    with running(worker):
        assert wait_for(lambda: redis_conn.get("test:started:a") == b"1", 30), worker.stderr()
        worker.sigterm()  # the worker and its scheduler, as the dyno manager does
        signalled = time.monotonic()
        assert worker.wait(HEROKU_GRACE_SECONDS) == 0, worker.stderr()
        took = time.monotonic() - signalled
    assert took < HEROKU_GRACE_SECONDS
    # The job ran to its end once, in the worker that had it, before the worker left.
    assert redis_conn.get("test:started:a") == b"1"
    assert redis_conn.get("test:done:a") == b"1"
    assert Job.fetch(job.id, connection=redis_conn, serializer=JSONSerializer).get_status() == (
        "finished"
    )
    assert redis_conn.llen("rq:queue:ingest") == 0
    assert "Traceback" not in worker.stderr()


@pytest.mark.timeout(60)
def test_sigterm_when_idle_exits_at_once(redis_url: str, tmp_path: Path) -> None:
    worker = Process(["worker"], configured(redis_url), tmp_path / "worker.log")
    conn = redis.Redis.from_url(redis_url)
    with running(worker):
        # Started: the worker has registered itself.
        assert wait_for(lambda: conn.scard("rq:workers") == 1, 30), worker.stderr()
        worker.sigterm()
        signalled = time.monotonic()
        assert worker.wait(HEROKU_GRACE_SECONDS) == 0, worker.stderr()
        assert time.monotonic() - signalled < 10
    assert conn.scard("rq:workers") == 0  # it said it left
    conn.close()
