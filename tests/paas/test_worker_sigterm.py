"""A SIGTERMed `ingest worker` finishes the job it runs (RQ's warm shutdown) and exits within
Heroku's 30 s: no job is lost or run twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from rq import Queue, Retry, Worker
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
    worker = Process(["worker"], configured(redis_url), tmp_path / "worker.log").start()
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
    worker = Process(["worker"], configured(redis_url), tmp_path / "worker.log").start()
    conn = redis.Redis.from_url(redis_url)
    with running(worker):
        # Waiting for jobs ("idle" comes after RQ installs its signal handlers; a SIGTERM
        # before them ends the process as the default action does, with nothing to lose).
        def idle() -> bool:
            return [w.get_state() for w in Worker.all(connection=conn)] == ["idle"]

        assert wait_for(idle, 30), worker.stderr()
        worker.sigterm()
        signalled = time.monotonic()
        assert worker.wait(HEROKU_GRACE_SECONDS) == 0, worker.stderr()
        assert time.monotonic() - signalled < 10
    assert conn.scard("rq:workers") == 0  # it said it left
    conn.close()


@pytest.mark.timeout(120)
def test_a_job_past_the_grace_goes_back_with_its_retries(
    redis_url: str, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    """A job that would outlive the platform's 30 s is put back before the worker exits, with
    its retries untouched; the next worker runs it to its end."""
    queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
    job = queue.enqueue("tests.paas.jobs.slow_first_time", "b", 90, retry=Retry(max=2),
                        job_timeout=300)  # fmt: skip
    first = Process(["worker"], configured(redis_url), tmp_path / "worker1.log").start()
    second = Process(["worker"], configured(redis_url), tmp_path / "worker2.log")
    with running(first, second):
        assert wait_for(lambda: redis_conn.get("test:started:b") == b"1", 30), first.stderr()
        first.sigterm()
        signalled = time.monotonic()
        assert first.wait(HEROKU_GRACE_SECONDS) == 0, first.stderr()
        assert time.monotonic() - signalled < HEROKU_GRACE_SECONDS
        job = Job.fetch(job.id, connection=redis_conn, serializer=JSONSerializer)
        assert job.get_status() == "queued", first.stderr()
        assert job.retries_left == 2  # a shutdown is not the job's failure
        assert redis_conn.lrange("rq:queue:ingest", 0, -1) == [job.id.encode()]
        assert redis_conn.get("test:done:b") is None  # cut short, not run to its end
        assert redis_conn.get("test:caught:b") is None  # not a failure of the job's own
        second.start()
        assert wait_for(lambda: job.get_status(refresh=True) == "finished", 30), second.stderr()
    assert redis_conn.get("test:started:b") == b"2"
    assert redis_conn.get("test:done:b") == b"1"
    assert "job_put_back" in first.stderr()
    assert "Traceback" not in first.stderr()
