"""A worker killed mid-job loses nothing: another worker runs the job again, in bounded time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from tests.ingest.test_cli import configured

ROOT = Path(__file__).resolve().parents[2]
INGEST = str(Path(sys.executable).parent / "ingest")
HEARTBEAT_TTL = 4


def start_worker(redis_url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "SF_"))}
    env.update(configured(redis_url))
    env.update(PYTHONPATH=str(ROOT), INGEST_WORKER_HEARTBEAT_TTL=str(HEARTBEAT_TTL))
    return subprocess.Popen(
        [INGEST, "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


class TestCrashSafety:
    """SIGKILL of the worker running a job: the job is retried by another worker and finishes."""

    @pytest.mark.timeout(90)
    def test_killed_worker_job_runs_again(self, redis_url: str, redis_conn: redis.Redis) -> None:
        queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        job = queue.enqueue(
            "tests.workers.crash_jobs.hang_first_time", "a", retry=Retry(max=2), job_timeout=300
        )
        first = start_worker(redis_url)
        second: subprocess.Popen[bytes] | None = None
        try:
            assert wait_for(lambda: redis_conn.get("test:attempts:a") == b"1", 30)
            os.killpg(first.pid, signal.SIGKILL)  # the worker and its scheduler, mid-job
            first.wait(10)
            second = start_worker(redis_url)
            # Bound: the entry expires within HEARTBEAT_TTL, maintenance runs every TTL/2,
            # plus the second worker's start-up; generous to stay independent of load.
            assert wait_for(lambda: redis_conn.get("test:done:a") is not None, 60)
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(20)
        assert redis_conn.get("test:done:a") == b"2"
        job = Job.fetch(job.id, connection=redis_conn, serializer=JSONSerializer)
        assert wait_for(lambda: job.get_status(refresh=True) == "finished", 10)


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        fields = stat.rpartition(")")[2].split()
        if fields and fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


class TestNoOrphanScheduler:
    """A worker killed with SIGKILL takes its RQ scheduler with it, and the lock is let go."""

    @pytest.mark.timeout(60)
    def test_scheduler_ends_with_its_worker(self, redis_url: str, redis_conn: redis.Redis) -> None:
        worker = start_worker(redis_url)
        lock = "rq:scheduler-lock:ingest"
        try:
            assert wait_for(lambda: redis_conn.exists(lock) and children(worker.pid), 30)
            [scheduler] = children(worker.pid)
            os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its process group
            worker.wait(10)
            assert wait_for(lambda: not alive(scheduler), 15)
            assert wait_for(lambda: not redis_conn.exists(lock), 15)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)


class TestRqLogsRedacted:
    """RQ logs a failed job through stdlib logging, its exception text included: those lines
    take the product's redaction too."""

    @pytest.mark.timeout(60)
    def test_a_token_in_a_failing_job_is_not_logged(
        self, redis_url: str, redis_conn: redis.Redis
    ) -> None:
        jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlciJ9.c2lnbmF0dXJlLXNlY3JldA"
        query = "access_token=opaque-secret-value"
        queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        job = queue.enqueue("tests.workers.crash_jobs.refuse_token", f"{jwt} {query}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "SF_"))}
        env.update(configured(redis_url))
        env.update(PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [INGEST, "worker", "--burst"], env=env, capture_output=True, timeout=50, check=False
        )
        output = (done.stdout + done.stderr).decode()
        assert done.returncode == 0, output
        assert job.get_status(refresh=True) == "failed"
        [line] = [x for x in output.splitlines() if "exception raised while executing" in x]
        event = json.loads(line)  # the product's JSON lines, not RQ's own format
        assert event["logger"] == "rq.worker" and event["level"] == "error"
        assert "the upstream refused [redacted] access_token=[redacted]" in event["event"]
        assert "eyJhbGciOiJSUzI1NiJ9" not in output and "opaque-secret-value" not in output
