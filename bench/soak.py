"""Soak: the receiver under a constant, open-loop rate for a minute, with one worker draining.

Starts its own Redis, the Graph and Salesforce emulators, `ingest serve`, the ECI users and
the subscriptions (bench/pipeline_stack.py), and one `ingest worker`. Then:

1. settles SOAK_MEETINGS generated meetings (the Graph emulator posts their notifications,
   the worker takes each to Salesforce), so that a further notification of one of them is the
   cheapest job a notification makes: the worker notes it in the ledger and asks Graph
   nothing. That gives one worker's highest drain rate, and so the hardest "twice" below;
2. drain: posts SOAK_DRAIN_JOBS such notifications through the receiver (50-item batches,
   each with an id of its own) and times until the queue is empty and the worker idle;
3. soak: SOAK_SECONDS (default 60) of single-item notifications at twice that rate
   (SOAK_RATE overrides it), sent on a timetable by bench/openloop.py, while the worker
   drains what it can. Latency counts from when each request was due;
4. the same at SOAK_HIGH_RATE notifications/s (default 1000; 0 skips it): several times
   what a worker drains, to show latency and memory while the queue grows by tens of
   thousands of jobs.

Prints the drain rate, then for each soak the achieved rate, answers by status, p50/p99/max
latency, the receiver's RSS (VmRSS of the `ingest serve` process) at the start, the peak and
the end, and every 10 s, and the queue depth at the start and end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq.registry import FailedJobRegistry, FinishedJobRegistry  # noqa: E402

from bench import pipeline_scenario  # noqa: E402
from bench.flood import rss_mb  # noqa: E402
from bench.pipeline_stack import Stack, new_workdir  # noqa: E402
from workers import registry  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
RATE = os.environ.get("SOAK_RATE")  # notifications/s; default: twice the drain rate
HIGH_RATE = float(os.environ.get("SOAK_HIGH_RATE", "1000"))
MEETINGS = int(os.environ.get("SOAK_MEETINGS", "10"))
DRAIN_JOBS = int(os.environ.get("SOAK_DRAIN_JOBS", "2000"))
BATCH = 50  # items per request while queueing the drain's jobs
GOAL_P99_S = 3.0  # Graph's budget for an answer


@dataclass
class Target:
    """What a notification needs to be accepted: the receiver and a callRecords subscription."""

    port: int
    subscription: registry.Subscription
    tenant: str
    call_records: list[str]

    def body(self, count: int) -> bytes:
        items = []
        for n in range(count):
            cr = self.call_records[n % len(self.call_records)]
            items.append({
                "id": str(uuid.uuid4()), "subscriptionId": self.subscription.id,
                "clientState": self.subscription.client_state, "changeType": "updated",
                "resource": f"communications/callRecords/{cr}",
                "tenantId": self.tenant,
            })  # fmt: skip
        return json.dumps({"value": items}).encode()

    def post(self, count: int) -> int:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graph/notifications", data=self.body(count),
            method="POST", headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)


@dataclass
class Sampler:
    """The receiver's RSS and the queue depth, sampled from a thread while the soak runs."""

    pid: int
    stack: Stack
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds in, MB)
    depth: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self.t0 = time.monotonic()
        self.rss.append((0.0, rss_mb(self.pid)))
        self.depth.append(self.stack.queue.count)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.rss.append((time.monotonic() - self.t0, rss_mb(self.pid)))
            self.depth.append(self.stack.queue.count)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.rss.append((time.monotonic() - self.t0, rss_mb(self.pid)))
        self.depth.append(self.stack.queue.count)


def settle(stack: Stack) -> None:
    """Play every meeting and wait until the worker has taken each to its outcome."""
    stack.graph.call("POST", "/_emulator/play", {})
    stack.wait_settled(MEETINGS, 300)
    stack.wait_idle(120)
    time.sleep(1.0)  # late `updated` notifications of the play (the emulator delays them)
    stack.wait_idle(120)


def drain_rate(stack: Stack, target: Target) -> tuple[float, int, float]:
    """One worker's rate on DRAIN_JOBS notifications queued through the receiver at once:
    (jobs/s, jobs, seconds). Raises if a job failed: the rate would not be of real work."""
    finished = FinishedJobRegistry(queue=stack.queue)
    failed = FailedJobRegistry(queue=stack.queue)
    done0, failed0 = finished.count, failed.count
    t0 = time.monotonic()
    sent = 0
    while sent < DRAIN_JOBS:
        n = min(BATCH, DRAIN_JOBS - sent)
        if target.post(n) != 202:
            raise RuntimeError("the receiver refused the drain's notifications")
        sent += n
    stack.wait_idle(600)
    seconds = time.monotonic() - t0
    if failed.count != failed0:
        raise RuntimeError(f"{failed.count - failed0} drain jobs failed; see the worker's log")
    jobs = finished.count - done0
    if jobs != DRAIN_JOBS:
        raise RuntimeError(f"{jobs} jobs finished of the {DRAIN_JOBS} posted")
    return jobs / seconds, jobs, seconds


def soak(target: Target, rate: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "openloop.py"),
            "--port", str(target.port), "--rate", f"{rate:.1f}", "--seconds", str(SECONDS),
            "--tenant", target.tenant, "--sub", target.subscription.id,
            "--state", target.subscription.client_state,
            "--call-records", ",".join(target.call_records),
        ],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> int:
    workdir = new_workdir()
    scenario = pipeline_scenario.write(workdir / "scenario.json", MEETINGS)
    stack = Stack(scenario, workdir / "scenario.json", workdir)
    try:
        progress(f"starting Redis, emulators, receiver and one worker; {MEETINGS} meetings")
        stack.start()
        stack.start_worker()
        settle(stack)
        port = int(stack.env["INGEST_PUBLIC_URL"].rsplit(":", 1)[1])
        subs = [s for s in registry.load_all(stack.conn) if s.kind == registry.KIND_CALL_RECORDS]
        crs = [stack.world.call_record_id(m.id) for m in scenario.meetings]
        target = Target(port, subs[0], scenario.tenant.id, crs)
        progress(f"drain: {DRAIN_JOBS} notification jobs through the receiver")
        drain, jobs, drain_s = drain_rate(stack, target)
        print(f"soak benchmark: `ingest serve`, one `ingest worker`, Redis and the emulators "
              f"on {os.cpu_count()} cores")  # fmt: skip
        print(f"one worker's drain rate: {drain:.0f} notification jobs/s ({jobs} jobs queued "
              f"through the receiver in {BATCH}-item batches, drained in {drain_s:.1f} s; each "
              f"a further notification of a settled meeting)")  # fmt: skip
        phases = [("SOAK_RATE" if RATE else "twice the drain rate",
                   float(RATE) if RATE else 2 * drain)]  # fmt: skip
        if HIGH_RATE:
            phases.append(("SOAK_HIGH_RATE", HIGH_RATE))
        for label, rate in phases:
            progress(f"soak: {SECONDS:g} s at {rate:.0f} notifications/s")
            finished = FinishedJobRegistry(queue=stack.queue)
            done0 = finished.count
            with Sampler(stack.children["receiver"].proc.pid, stack) as sampler:
                result = soak(target, rate)
            report(label, rate, result, sampler, finished.count - done0)
    finally:
        stack.close()
    return 0


def progress(line: str) -> None:
    print(f"... {line}", file=sys.stderr, flush=True)


def report(label: str, rate: float, result: dict[str, Any], sampler: Sampler, ran: int) -> None:
    statuses: dict[str, int] = result["statuses"]
    errors: dict[str, int] = result["errors"]
    non_202 = sum(n for s, n in statuses.items() if s != "202")
    rss = [mb for _, mb in sampler.rss]
    every = [next(f"{mb:.0f}" for t, mb in sampler.rss if t >= mark)
             for mark in range(0, int(SECONDS) + 1, 10)]  # fmt: skip
    print(f"soak at {rate:.0f} notifications/s ({label}): {SECONDS:g} s of single-item "
          f"requests, open loop, {result['connections']} connections")  # fmt: skip
    print(f"  due {result['due']}, answered {result['answered']} at {result['rate']}/s; "
          f"answers {statuses}; non-202: {non_202}; no answer: {sum(errors.values())}")  # fmt: skip
    print(f"  latency from when each request was due: p50 {result['p50_ms']} ms, p99 "
          f"{result['p99_ms']} ms, max {result['max_ms']} ms (the client ran behind its "
          f"timetable by p99 {result['behind_p99_ms']} ms, at most "
          f"{result['behind_max_ms']} ms)")  # fmt: skip
    print(f"  receiver RSS: start {rss[0]:.0f} MB, peak {max(rss):.0f} MB, end {rss[-1]:.0f} "
          f"MB; every 10 s: {' '.join(every)} MB")  # fmt: skip
    print(f"  queue: {sampler.depth[0]} jobs at the start, {sampler.depth[-1]} at the end "
          f"(peak {max(sampler.depth)}); the worker ran {ran} jobs meanwhile "
          f"({ran / SECONDS:.0f}/s)")  # fmt: skip
    verdicts = {
        f"p99 < {GOAL_P99_S:g} s": result["p99_ms"] / 1000 < GOAL_P99_S,
        "every request answered 202": non_202 == 0 and not errors,
        "rate held (>= 99%)": result["rate"] >= 0.99 * rate,
    }
    print("  goals: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in verdicts.items()))


if __name__ == "__main__":
    raise SystemExit(main())
