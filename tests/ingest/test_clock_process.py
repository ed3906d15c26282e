"""Two real `ingest clock` processes: one leads (through passes longer than the lock's
lifetime), the other takes over after SIGTERM; both stop cleanly with status 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from ingest.clock import LOCK_KEY


def start(redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        REDIS_URL=redis_url,
        GRAPH_TENANT_ID="11111111-1111-1111-1111-111111111111",
        GRAPH_CLIENT_ID="app",
        GRAPH_CLIENT_SECRET="not-a-secret",
        # Nothing listens there: every pass fails after the SDK's retries (seconds, longer
        # than the lock's lifetime), which the clock logs and survives.
        GRAPH_BASE_URL="http://127.0.0.1:9/v1.0",
        GRAPH_AUTHORITY="https://127.0.0.1:9",
        INGEST_PUBLIC_URL="http://127.0.0.1:9",
        INGEST_CLOCK_TICK_SECONDS="0.1",
        INGEST_CLOCK_LOCK_TTL_SECONDS="1.5",
        INGEST_GRAPH_TIMEOUT_SECONDS="1",
    )
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "ingest", "clock"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip


def wait_for(log: Path, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


class TestTwoProcesses:
    """Only one clock process leads at a time; SIGTERM hands the lead over."""

    def test_one_leader_and_takeover(self, redis_url: str, tmp_path: Path) -> None:
        a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
        a = start(redis_url, a_log)
        b = None
        try:
            wait_for(a_log, "clock_leader")
            b = start(redis_url, b_log)
            wait_for(b_log, "clock_starting")
            time.sleep(3)  # twice the lock's lifetime, while the leader is inside a pass
            assert "clock_leader" not in b_log.read_text()
            a.send_signal(signal.SIGTERM)
            assert a.wait(30) == 0
            assert "clock_stopped" in a_log.read_text()
            wait_for(b_log, "clock_leader")
            b.send_signal(signal.SIGTERM)
            assert b.wait(30) == 0
        finally:
            for proc in (a, b):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
        conn = redis.Redis.from_url(redis_url)
        try:
            assert conn.get(LOCK_KEY) is None  # released on the way out
        finally:
            conn.close()
        assert "not-a-secret" not in a_log.read_text() + b_log.read_text()
