"""Receiver benchmark: `ingest serve` against the floor receiver, same load, same machine.

Starts its own redis-server, the product's receiver and ../shared/bench/floor_receiver.py,
then drives each in turn (interleaved, twice) from a separate process: single-item
notifications at 32 connections, each for a new callRecord id, and 50-item batches.
Prints notifications/s, p50/p99 latency and the ratio to the floor; then the receiver's
bounds under hostile and large bodies (bench/flood.py), with its log written to a file, and
its memory under the slow-body flood. Each load also runs against the same receiver with the
ops page polled once a second (`receiver+ops`, bench/ops_poll.py), to show what an open ops
page costs notifications.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench import flood, ops_poll  # noqa: E402
from ingest.embedded_redis import RedisServer, free_port  # noqa: E402
from workers import registry  # noqa: E402

FLOOR = ROOT.parent / "shared" / "bench" / "floor_receiver.py"
TENANT = "11111111-1111-1111-1111-111111111111"
SUB = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
STATE = "bench-client-state"
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = 32


def wait_http(port: int, path: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}",
                method="POST",
                data=b"",
                headers={"Content-Type": "text/plain"},
            )
            with urllib.request.urlopen(req, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def drive(port: int, batch: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            "--port",
            str(port),
            "--connections",
            str(CONNECTIONS),
            "--seconds",
            str(SECONDS),
            "--batch",
            str(batch),
            "--tenant",
            TENANT,
            "--sub",
            SUB,
            "--state",
            STATE,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> int:
    with RedisServer() as srv, tempfile.NamedTemporaryFile(suffix=".log") as log:
        product_url, floor_url = f"{srv.url}/1", f"{srv.url}/2"
        registry.mark(redis.Redis.from_url(product_url))  # set up, as `subscriptions ensure` does
        registry.save(
            redis.Redis.from_url(product_url),
            registry.Subscription(
                id=SUB,
                resource="communications/callRecords",
                kind="callRecords",
                client_state=STATE,
                tenant_id=TENANT,
            ),
        )
        ops_poll.seed(product_url)
        env = dict(os.environ, REDIS_URL=product_url, GRAPH_TENANT_ID=TENANT,
                   INGEST_OPS_TOKEN=ops_poll.TOKEN)  # fmt: skip
        ports = {"receiver": free_port(), "floor": free_port()}
        procs = {
            "receiver": subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "ingest"),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["receiver"]),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
        }
        if FLOOR.exists():
            procs["floor"] = subprocess.Popen(
                [
                    sys.executable,
                    str(FLOOR),
                    "--port",
                    str(ports["floor"]),
                    "--redis-url",
                    floor_url,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            print(f"floor receiver not found at {FLOOR}; ratios are not printed")
        try:
            for name in procs:
                wait_http(ports[name], "/graph/notifications?validationToken=ready")
            results: dict[tuple[str, int], list[dict[str, float]]] = {}
            pollers = []
            for batch in (1, 50):
                drive(ports["receiver"], batch)  # warm-up, not counted
                for _round in range(2):
                    for name in procs:
                        results.setdefault((name, batch), []).append(drive(ports[name], batch))
                    with ops_poll.Poller(ports["receiver"]) as poller:
                        run = drive(ports["receiver"], batch)
                    results.setdefault(("receiver+ops", batch), []).append(run)
                    pollers.append(poller)
            report(results, [*procs, "receiver+ops"])
            print(summary(pollers))
            print()
            flood.run(ports["receiver"], Path(log.name), SUB, STATE, TENANT)
            print()
            flood.slow_bodies(ports["receiver"], procs["receiver"].pid)
            print()
            flood.silent_connections(ports["receiver"], procs["receiver"].pid)
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(10)
    return 0


def report(results: dict[tuple[str, int], list[dict[str, float]]], names: list[str]) -> None:
    print(
        f"receiver benchmark: {CONNECTIONS} connections, {SECONDS:g} s per run, 2 runs each, "
        f"interleaved; {os.cpu_count()} cores"
    )
    print(
        f"{'load':<22}{'server':<14}{'notif/s':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}"
    )
    rates: dict[tuple[str, int], float] = {}
    for (name, batch), runs in results.items():
        notif = sum(r["notifications"] for r in runs) / sum(r["seconds"] for r in runs)
        reqs = sum(r["requests"] for r in runs) / sum(r["seconds"] for r in runs)
        p50 = max(r["p50_ms"] for r in runs)
        p99 = max(r["p99_ms"] for r in runs)
        bad = sum(n for r in runs for s, n in r["statuses"].items() if not str(s).startswith("2"))  # type: ignore[attr-defined]
        rates[(name, batch)] = notif
        label = "single-item" if batch == 1 else f"{batch}-item batches"
        print(f"{label:<22}{name:<14}{notif:>10.0f}{reqs:>9.0f}{p50:>9.2f}{p99:>9.2f}{bad:>9}")
    for batch in (1, 50):
        label = "single-item" if batch == 1 else f"{batch}-item batches"
        if "floor" in names:
            ratio = rates[("receiver", batch)] / rates[("floor", batch)]
            print(f"ratio receiver/floor, {label}: {ratio:.2f}")
        with_page = rates[("receiver+ops", batch)] / rates[("receiver", batch)]
        print(f"ratio with the ops page polled every second / without, {label}: {with_page:.2f}")


def summary(pollers: list[ops_poll.Poller]) -> str:
    """The ops page's own figures over every polled run."""
    merged = ops_poll.Poller(0)
    for poller in pollers:
        merged.latencies += poller.latencies
        merged.statuses += poller.statuses
        merged.size = poller.size or merged.size
    return merged.summary() + " (while the receiver was under load)"


if __name__ == "__main__":
    raise SystemExit(main())
