"""The ops page polled once a second during a receiver run, and the data it shows seeded.

bench/receiver.py runs each load twice against the same receiver process: once alone, once
with this poller fetching `/ops` (bearer token) every second, as an operator's open tab with
a refresh would. The difference is what the page costs the notification path.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from core.settings import Settings
from workers.ledger import Ledger
from workers.worker import build_worker

TOKEN = "bench-ops-token-0123456789abcdef0123456789"
FAILED_JOBS = 50  # the page lists at most 50
MEETINGS = 50


def seed(redis_url: str) -> None:
    """What a busy day leaves: 50 failed jobs (run and failed by the product's worker) and 50
    meetings with outcomes in the ledger, so the page does its full work on each load."""
    settings = Settings(redis_url=redis_url)
    conn = redis.Redis.from_url(redis_url)
    queue = Queue(settings.queue, connection=conn, serializer=JSONSerializer)
    for i in range(FAILED_JOBS):
        queue.enqueue("builtins.int", f"not a number {i}")
    # Quiet: fifty tracebacks would bury the figures.
    build_worker(settings, conn).work(burst=True, logging_level="CRITICAL")
    ledger = Ledger(conn)
    for i in range(MEETINGS):
        key = f"bench-meeting-{i}"
        ledger.update(key, subject=f"Meeting {i}", decision="eligible",
                      reason="external_participants")  # fmt: skip
        ledger.set_outcome(key, "pushed" if i % 3 else "skipped")
    conn.close()


class Poller:
    """GET /ops every `interval` seconds from a thread; keeps each load's latency and status."""

    def __init__(self, port: int, interval: float = 1.0) -> None:
        self.url = f"http://127.0.0.1:{port}/ops"
        self.interval = interval
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.size = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {TOKEN}"})
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    self.size = len(resp.read())
                    self.statuses.append(resp.status)
            except OSError:
                self.statuses.append(0)
            self.latencies.append((time.perf_counter() - started) * 1000)
            self._stop.wait(max(0.0, self.interval - (time.perf_counter() - started)))

    def summary(self) -> str:
        if not self.latencies:
            return "ops page: not loaded"
        ok = sum(1 for s in self.statuses if s == 200)
        return (f"ops page: {len(self.latencies)} loads ({ok} answered 200, {self.size} bytes), "
                f"median {statistics.median(self.latencies):.0f} ms, "
                f"max {max(self.latencies):.0f} ms")  # fmt: skip
