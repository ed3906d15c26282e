"""Pipeline benchmark: one `ingest worker` draining real notification jobs, emulators behind it.

Starts its own Redis, the Graph and Salesforce emulators (a generated scenario of eligible
meetings, bench/pipeline_scenario.py), the receiver, the ECI users and the subscriptions. The
Graph emulator posts every meeting's notifications (callRecord created and updated, transcript
created) to the receiver while no worker runs; the benchmark lifts those jobs off the queue
and hands them to ONE worker a phase at a time (bench/pipeline_stack.py):

1. warm-up: a few meetings (imports, tokens, the Salesforce start check), not counted;
2. zero latency: BENCH_MEETINGS meetings (default 200) at once: meetings/s, Graph requests
   and Salesforce API calls per meeting, the worker's CPU per meeting;
3. 100 ms Graph / 200 ms Salesforce latency (the emulators' faults): BENCH_SLOW_MEETINGS
   (default 20) at once for meetings/s, then BENCH_LATENCY_SAMPLES (default 5) one at a time
   on an idle worker: callRecord notification job queued -> meeting pushed, against the serial
   sum of the round trips it made (requests x injected latency);
4. no-op: BENCH_NOOP_JOBS (default 2000) RQ jobs that return None, same worker process.

BENCH_PROFILE=FILE runs the worker under cProfile and writes its stats to FILE (the figures
are then the profiled worker's).

Prints one table: rates, requests per meeting, end-to-end latency, peak RSS and the goals.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq import Queue  # noqa: E402
from rq.job import Job  # noqa: E402

from bench import pipeline_scenario  # noqa: E402
from bench.pipeline_stack import Stack, new_workdir  # noqa: E402
from core import defaults  # noqa: E402

MEETINGS = int(os.environ.get("BENCH_MEETINGS", "200"))
SLOW_MEETINGS = int(os.environ.get("BENCH_SLOW_MEETINGS", "20"))
SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "5"))
NOOPS = int(os.environ.get("BENCH_NOOP_JOBS", "2000"))
PROFILE = os.environ.get("BENCH_PROFILE")  # a file: the worker runs under cProfile
WARM = 3
GRAPH_MS, SF_MS = 100, 200
GOAL_RATE, GOAL_LATENCY_RATIO, GOAL_RSS_MB = 20.0, 1.3, 200.0
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    """What one phase measured; requests are per phase, divided per meeting on output."""

    meetings: int
    seconds: float
    graph_requests: int
    graph_tokens: int
    sf_calls: int
    sf_tokens: int
    cpu: dict[str, float]  # process name -> CPU seconds
    graph_routes: dict[str, int]
    redis: dict[str, int]  # commands by name, and `_total` (the benchmark's own left out)
    job_seconds: dict[str, float] = field(default_factory=dict)  # by kind of job
    not_pushed: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.meetings / self.seconds

    def per_meeting(self, value: float) -> float:
        return value / self.meetings


def graph_api_requests(stats: dict[str, Any]) -> int:
    """Graph API requests (`/v1.0/`), subscription management aside."""
    requests: dict[str, int] = stats["requests"]
    return sum(n for k, n in requests.items() if "/v1.0/" in k and "subscriptions" not in k)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def memory_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) and VmRSS of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            out[name] = int(value.split()[0]) / 1024
    return out


class Bench:
    def __init__(self, stack: Stack, pid: int) -> None:
        self.stack = stack
        self.pid = pid

    def measure(self, meetings: list[str], run: Any) -> Phase:
        """Run `run()` (which returns the phase's seconds) between two reads of the counters."""
        graph0, sf0 = self.stack.stats()
        redis0 = self.stack.redis_commands()
        pids = {k: v for k, v in self.stack.pids().items() if k != "receiver"}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        seconds = run()
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        redis1 = self.stack.redis_commands()
        graph1, sf1 = self.stack.stats()
        routes = {
            k: n - graph0["requests"].get(k, 0)
            for k, n in graph1["requests"].items()
            if n - graph0["requests"].get(k, 0)
        }
        outcomes = [self.stack.outcome(m)[0] for m in meetings]
        not_pushed: dict[str, int] = {}
        for outcome in outcomes:
            if outcome != "pushed":
                not_pushed[outcome or "unsettled"] = not_pushed.get(outcome or "unsettled", 0) + 1
        return Phase(
            meetings=len(meetings),
            seconds=seconds,
            graph_requests=graph_api_requests(graph1) - graph_api_requests(graph0),
            graph_tokens=graph1["tokens_issued"] - graph0["tokens_issued"],
            sf_calls=sf1["api_calls"] - sf0["api_calls"],
            sf_tokens=sf1["token_requests"] - sf0["token_requests"],
            cpu=cpu,
            graph_routes=routes,
            redis={k: n - redis0.get(k, 0) for k, n in redis1.items() if n - redis0.get(k, 0)},
            not_pushed=not_pushed,
        )

    def drain(self, meetings: list[str], timeout: float) -> Phase:
        """Queue every job of `meetings` at once; time until the last of them is pushed."""
        wanted = set(meetings)
        jobs = [j for j, m in self.stack.order if m in wanted]

        def run() -> float:
            target = self.stack.settled() + len(meetings)
            t0 = self.stack.release(jobs)
            self.stack.wait_settled(target, timeout)
            self.stack.wait_idle()
            return max(self.stack.outcome(m)[1] for m in meetings) - t0

        phase = self.measure(meetings, run)
        phase.job_seconds = self.stack.job_seconds(meetings)
        return phase

    def one_by_one(self, meetings: list[str]) -> tuple[Phase, list[float]]:
        """Each meeting's callRecord job alone on an idle worker: seconds until pushed."""
        latencies: list[float] = []

        def run() -> float:
            for meeting in meetings:
                target = self.stack.settled() + 1
                t0 = self.stack.release([self.stack.created[meeting]])
                self.stack.wait_settled(target, 60)
                latencies.append(self.stack.outcome(meeting)[1] - t0)
                self.stack.wait_idle()
            return sum(latencies)

        phase = self.measure(meetings, run)
        created = set(self.stack.created.values())
        rest = [j for j, m in self.stack.order if m in meetings and j not in created]
        self.stack.release(rest)  # the updated and transcript notifications, untimed
        self.stack.wait_idle()
        return phase, latencies

    def noop(self, count: int) -> float:
        """No-op jobs/s on the same worker: all queued in one round trip, until the last ends."""
        queue = self.stack.queue
        datas = [
            Queue.prepare_data(
                "bench.noop.noop",
                job_id=f"noop-{n}",
                timeout=defaults.JOB_TIMEOUT_SECONDS,
                result_ttl=defaults.JOB_RESULT_TTL_SECONDS,
            )
            for n in range(count)
        ]
        pipe = self.stack.conn.pipeline()
        queue.enqueue_many(datas, pipeline=pipe)
        t0 = time.time()
        pipe.execute()
        self.stack.wait_idle(timeout=300)
        last = Job.fetch(f"noop-{count - 1}", connection=self.stack.conn)
        if last.ended_at is None or last.get_status() != "finished":
            raise RuntimeError(f"the last no-op job ended as {last.get_status()}")
        return count / (last.ended_at.timestamp() - t0)


def main() -> int:
    workdir = new_workdir()
    total = WARM + MEETINGS + SLOW_MEETINGS + SAMPLES
    scenario = pipeline_scenario.write(workdir / "scenario.json", total)
    ids = [m.id for m in scenario.meetings]
    warm, fast = ids[:WARM], ids[WARM : WARM + MEETINGS]
    slow = ids[WARM + MEETINGS : WARM + MEETINGS + SLOW_MEETINGS]
    samples = ids[WARM + MEETINGS + SLOW_MEETINGS :]
    stack = Stack(scenario, workdir / "scenario.json", workdir)
    started = time.monotonic()
    try:
        progress(f"starting Redis, emulators, receiver; {total} meetings")
        stack.start()
        captured = stack.capture()
        progress(f"the receiver queued {captured} notification jobs; starting one worker")
        pid = stack.start_worker(PROFILE)
        bench = Bench(stack, pid)
        bench.drain(warm, 120)
        progress(f"zero latency: {len(fast)} meetings")
        zero = bench.drain(fast, 600)
        stack.set_latency(GRAPH_MS, SF_MS)
        progress(f"{GRAPH_MS} ms Graph / {SF_MS} ms Salesforce: {len(slow)} meetings")
        slow_phase = bench.drain(slow, 600)
        progress(f"end-to-end latency: {len(samples)} meetings one at a time")
        single, latencies = bench.one_by_one(samples)
        stack.set_latency(0, 0)
        progress(f"no-op: {NOOPS} jobs")
        noop_rate = bench.noop(NOOPS)
        memory = memory_mb(pid)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        memory["children"] = sum(memory_mb(int(c)).get("VmRSS", 0.0) for c in children)
        report(zero, slow_phase, single, latencies, noop_rate, memory, captured, total)
        progress(f"done in {time.monotonic() - started:.0f} s")
    finally:
        stack.close()
    return 0


def progress(line: str) -> None:
    print(f"... {line}", file=sys.stderr, flush=True)


def report(
    zero: Phase,
    slow: Phase,
    single: Phase,
    latencies: list[float],
    noop_rate: float,
    memory: dict[str, float],
    captured: int,
    total: int,
) -> None:
    per_graph = single.per_meeting(single.graph_requests)
    per_sf = single.per_meeting(single.sf_calls)
    serial = per_graph * GRAPH_MS / 1000 + per_sf * SF_MS / 1000
    median, worst = statistics.median(latencies), max(latencies)
    jobs_per_meeting = captured / total + 1  # the receiver's jobs and the push
    print(
        f"pipeline benchmark: one `ingest worker` (workers.worker.IngestWorker), "
        f"{os.cpu_count()} cores; {jobs_per_meeting:.0f} jobs a meeting "
        f"({captured / total:.0f} notifications + 1 push)"
    )
    rows: list[tuple[str, str, str]] = [
        ("meetings/s, zero latency", f"{zero.rate:.1f}", f">= {GOAL_RATE:g}"),
        (f"  ({zero.meetings} meetings in)", f"{zero.seconds:.2f} s", ""),
        (
            "  CPU ms per meeting: worker",
            f"{zero.per_meeting(zero.cpu['worker']) * 1000:.1f}",
            ", ".join(
                f"{name} {zero.per_meeting(zero.cpu[name]) * 1000:.1f}"
                for name in ("graph", "salesforce", "redis")
            ),
        ),
        ("  Graph requests per meeting", f"{zero.per_meeting(zero.graph_requests):.2f}", ""),
        ("  Salesforce API calls per meeting", f"{zero.per_meeting(zero.sf_calls):.2f}", "<= 2"),
        ("  Redis commands per meeting", f"{zero.per_meeting(zero.redis['_total']):.0f}", ""),
        ("  token requests (Graph, Salesforce)", f"{zero.graph_tokens}, {zero.sf_tokens}", ""),
        (f"meetings/s, {GRAPH_MS}/{SF_MS} ms latency", f"{slow.rate:.2f}", ""),
        (f"  ({slow.meetings} meetings in)", f"{slow.seconds:.2f} s", ""),
        ("end-to-end latency, median", f"{median * 1000:.0f} ms", ""),
        ("end-to-end latency, worst", f"{worst * 1000:.0f} ms", ""),
        (
            "serial sum of round trips",
            f"{serial * 1000:.0f} ms",
            f"{per_graph:.0f} Graph x {GRAPH_MS} + {per_sf:.0f} SF x {SF_MS}",
        ),
        ("  median / serial sum", f"{median / serial:.2f}", f"<= {GOAL_LATENCY_RATIO:g}"),
        (
            "worker peak RSS (VmHWM)",
            f"{memory['VmHWM']:.0f} MB",
            f"<= {GOAL_RSS_MB:g} MB; RQ's forked scheduler {memory['children']:.0f} MB RSS "
            "(pages shared with the worker)",
        ),
        ("RQ no-op jobs/s, same worker", f"{noop_rate:.0f}", ""),
        ("  meetings/s / no-op jobs/s", f"{zero.rate / noop_rate:.3f}", ""),
        (
            "  pipeline jobs/s / no-op jobs/s",
            f"{zero.rate * jobs_per_meeting / noop_rate:.3f}",
            "",
        ),
    ]
    print(f"{'measure':<40}{'value':>12}  goal / note")
    for name, value, note in rows:
        print(f"{name:<40}{value:>12}  {note}")
    verdicts = {
        f"{GOAL_RATE:g} meetings/s": zero.rate >= GOAL_RATE,
        f"latency <= {GOAL_LATENCY_RATIO:g} x serial": median <= GOAL_LATENCY_RATIO * serial,
        f"RSS <= {GOAL_RSS_MB:g} MB": memory["VmHWM"] <= GOAL_RSS_MB,
    }
    print("goals: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in verdicts.items()))
    spent = ", ".join(
        f"{kind} {zero.per_meeting(sec) * 1000:.1f}" for kind, sec in zero.job_seconds.items()
    )
    between = zero.seconds - sum(zero.job_seconds.values())
    print(
        f"zero latency, ms per meeting in jobs: {spent}; between jobs (RQ, idle) "
        f"{zero.per_meeting(between) * 1000:.1f}"
    )
    routes = ", ".join(
        f"{route.replace('/users/{uid}/onlineMeetings/{meeting}', '/..')} {zero.per_meeting(n):.2f}"
        for route, n in sorted(zero.graph_routes.items())
    )
    print(f"Graph requests per meeting by route: {routes}")
    top = sorted(((n, k) for k, n in zero.redis.items() if k != "_total"), reverse=True)[:10]
    print(
        "Redis commands per meeting (top 10, the benchmark's polls included): "
        + ", ".join(f"{k} {zero.per_meeting(n):.1f}" for n, k in top)
    )
    for phase, name in ((zero, "zero latency"), (slow, "latency"), (single, "end-to-end")):
        if phase.not_pushed:
            print(f"warning: {name} phase meetings not pushed: {phase.not_pushed}")


if __name__ == "__main__":
    raise SystemExit(main())
