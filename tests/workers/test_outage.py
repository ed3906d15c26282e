"""A real `ingest worker` across a real Redis restart: it waits for Redis instead of exiting,
and a job stranded in RQ's intermediate list runs again without spending a retry.

The redis-server is the test's own, persisted at every command (appendfsync always), so a
restart keeps every key, as a managed Redis's failover or restart does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer
from structlog.testing import capture_logs

from core.settings import Settings
from ingest.embedded_redis import RedisServer
from tests.ingest.test_cli import configured
from tests.workers.test_worker import HEARTBEAT_TTL, ROOT, wait_for
from workers.worker import build_worker

INGEST = str(Path(sys.executable).parent / "ingest")
JOB = "tests.workers.crash_jobs.count_run"


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer(persist=True) as srv:
        yield srv


def start_worker(redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "SF_"))}
    env.update(configured(redis_url))
    env.update(PYTHONPATH=str(ROOT), INGEST_WORKER_HEARTBEAT_TTL=str(HEARTBEAT_TTL))
    with log.open("wb") as out:
        return subprocess.Popen([INGEST, "worker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def queue_of(conn: redis.Redis) -> Queue:
    return Queue("ingest", connection=conn, serializer=JSONSerializer)


class TestOutage:
    @pytest.mark.timeout(120)
    def test_the_worker_waits_for_redis_and_resumes(
        self, server: RedisServer, tmp_path: Path
    ) -> None:
        conn = redis.Redis.from_url(server.url)
        log = tmp_path / "worker.log"
        worker = start_worker(server.url, log)
        try:
            assert wait_for(lambda: conn.scard("rq:workers:ingest") == 1, 30)
            server.halt()
            # The worker notices (its heartbeat or its wait for jobs fails) and keeps waiting.
            assert wait_for(lambda: b"worker_redis_unavailable" in log.read_bytes()
                            or b"could not connect to Redis" in log.read_bytes(), 30)  # fmt: skip
            assert worker.poll() is None
            server.start()  # same port, same data
            back = time.monotonic()
            queue_of(conn).enqueue(JOB, "after", retry=Retry(max=2))
            assert wait_for(lambda: conn.get("test:done:after") == b"1", 30)
            print(f"a job ran {time.monotonic() - back:.1f} s after Redis was back")
            assert worker.poll() is None
        finally:
            stop(worker)

    @pytest.mark.timeout(120)
    def test_redis_lost_under_a_running_job(self, server: RedisServer, tmp_path: Path) -> None:
        conn = redis.Redis.from_url(server.url)
        log = tmp_path / "worker.log"
        worker = start_worker(server.url, log)
        try:
            queue_of(conn).enqueue("tests.workers.crash_jobs.stop_redis_first_time", "mid",
                                   retry=Retry(max=2))  # fmt: skip
            assert server.proc is not None
            assert wait_for(lambda: server.proc is not None and server.proc.poll() is not None,
                            30)  # fmt: skip
            assert wait_for(lambda: worker.poll() is not None
                            or b"worker_redis_unavailable" in log.read_bytes(), 30)  # fmt: skip
            assert worker.poll() is None  # RQ alone exits 1 here
            server.start()
            back = time.monotonic()
            # The job's registry entry expires and maintenance runs it again.
            assert wait_for(lambda: conn.get("test:done:mid") == b"2", 45)
            print(f"the interrupted job ran again {time.monotonic() - back:.1f} s after Redis "
                  "was back")  # fmt: skip
            assert worker.poll() is None
        finally:
            stop(worker)

    @pytest.mark.timeout(120)
    def test_a_stranded_job_runs_once_without_spending_a_retry(
        self, server: RedisServer, tmp_path: Path
    ) -> None:
        conn = redis.Redis.from_url(server.url)
        queue = queue_of(conn)
        job = queue.enqueue(JOB, "stranded", retry=Retry(max=2, interval=[60, 60]))
        # A worker's dequeue (BLMOVE into the intermediate list), then Redis restarts before
        # the job starts and the worker is gone.
        assert conn.lmove(queue.key, queue.intermediate_queue_key) == job.id.encode()
        server.restart()
        started = time.monotonic()
        worker = start_worker(server.url, tmp_path / "worker.log")
        try:
            # RQ alone fails it after a fixed minute and retries it after its interval
            # (60 s here); recovered, it runs once the worker saw it stranded twice.
            assert wait_for(lambda: conn.get("test:done:stranded") is not None, 45)
        finally:
            stop(worker)
        print(f"stranded job ran {time.monotonic() - started:.1f} s after the restart")
        assert conn.get("test:runs:stranded") == b"1"
        job = Job.fetch(job.id, connection=conn, serializer=JSONSerializer)
        assert job.get_status() == "finished"
        assert job.retries_left == 2
        assert conn.llen(queue.intermediate_queue_key) == 0


class TestBetweenDequeueAndStart:
    """Redis goes away after the worker moved a job into the intermediate list and before it
    starts it (an in-process worker, so that the moment can be chosen)."""

    def run_with_outage(
        self, server: RedisServer, before_halt: Callable[[redis.Redis, Job], None]
    ) -> tuple[redis.Redis, Job, list[dict[str, Any]]]:
        conn = redis.Redis.from_url(server.url)
        job = queue_of(conn).enqueue(JOB, "between", retry=Retry(max=2))
        worker = build_worker(Settings(redis_url=server.url, worker_heartbeat_ttl=4), conn)
        start = worker.prepare_execution
        halted = threading.Event()

        def prepare(job: Job) -> Any:
            if not halted.is_set():
                before_halt(conn, job)
                server.halt()
                halted.set()
            return start(job)

        worker.prepare_execution = prepare  # type: ignore[method-assign]
        with capture_logs() as logs:

            def restart() -> None:  # once the worker has seen Redis gone
                halted.wait(30)
                assert wait_for(lambda: any(e["event"] == "worker_redis_unavailable"
                                            for e in list(logs)), 30)  # fmt: skip
                server.start()

            restarter = threading.Thread(target=restart)
            restarter.start()
            worker.work(burst=True, logging_level="ERROR")
            restarter.join(30)
        return conn, Job.fetch(job.id, connection=conn, serializer=JSONSerializer), logs

    @pytest.mark.timeout(90)
    def test_the_worker_starts_it_once_redis_is_back(self, server: RedisServer) -> None:
        conn, job, _ = self.run_with_outage(server, lambda conn, job: None)
        assert conn.get("test:runs:between") == b"1"
        assert job.get_status() == "finished" and job.retries_left == 2
        assert conn.llen(queue_of(conn).intermediate_queue_key) == 0

    @pytest.mark.timeout(90)
    def test_a_job_requeued_meanwhile_is_left_to_the_queue(self, server: RedisServer) -> None:
        def requeue(conn: redis.Redis, job: Job) -> None:  # what another's maintenance does
            queue = queue_of(conn)
            assert conn.lrem(queue.intermediate_queue_key, 1, job.id) == 1
            conn.lpush(queue.key, job.id)

        conn, job, logs = self.run_with_outage(server, requeue)
        assert "job_requeued_meanwhile" in [e["event"] for e in logs]
        assert conn.get("test:runs:between") == b"1"  # run once, from the queue
        assert job.get_status() == "finished" and job.retries_left == 2
