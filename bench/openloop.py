"""An open-loop HTTP/1.1 load generator: requests sent on a timetable, not when the last ends.

A closed-loop generator (bench/load.py) waits for each answer before it sends again, so a
slow server is sent less and its queueing never shows. Here request i is due at
`start + i / rate` whatever happened before; it goes out on an idle keep-alive connection
(or a new one), and its latency counts from when it was due, so time spent waiting for a
connection or behind a slow answer is part of it. Run in its own process:

    python bench/openloop.py --port P --rate 400 --seconds 60 --batch 1 \
        --tenant T --sub S --state C --call-records ID,ID,...

Each notification has an id of its own (no two are redeliveries) and names the callRecords
given, in turn. Prints one JSON line: due, answered, statuses, errors, seconds, achieved rate,
latency percentiles (ms) and how far behind the timetable the client itself sent (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import load  # bench/load.py: this script runs from bench/, its sys.path[0]

ANSWER_TIMEOUT = 30.0  # a request with no answer by then counts as an error, not a latency


def notification(args: argparse.Namespace, cr_id: str) -> dict[str, object]:
    """bench/load.py's item for a given callRecord, with an id of its own (no redelivery)."""
    item = load.notification(args.tenant, args.sub, args.state, cr_id, change="updated")
    return {"id": str(uuid.uuid4()), **item}


def request_bytes(args: argparse.Namespace, ids: Iterator[str]) -> bytes:
    body = json.dumps({"value": [notification(args, next(ids)) for _ in range(args.batch)]})
    head = (
        f"POST /graph/notifications HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body.encode()


class Run:
    """The timetable's state: idle connections and what the answers were."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ids = itertools.cycle(args.call_records.split(","))
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.latencies: list[float] = []
        self.behind: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.opened = 0

    async def one(self, due: float) -> None:
        data = request_bytes(self.args, self.ids)
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.args.port)
            self.opened += 1
        self.behind.append(time.perf_counter() - due)
        try:
            writer.write(data)
            status = await asyncio.wait_for(load.read_answer(reader), ANSWER_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            self.errors[type(exc).__name__] += 1
            writer.close()
            return
        self.latencies.append(time.perf_counter() - due)
        self.statuses[status] += 1
        self.idle.append((reader, writer))


async def main(args: argparse.Namespace) -> None:
    run = Run(args)
    requests_per_s = args.rate / args.batch
    total = int(requests_per_s * args.seconds)
    pending: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / requests_per_s
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(run.one(due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    sent_for = time.perf_counter() - start
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    for _, writer in run.idle:
        writer.close()
    lat, behind = sorted(run.latencies), sorted(run.behind)

    def pct(values: list[float], q: float) -> float:
        return (
            round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2) if values else 0.0
        )

    answered = len(lat)
    print(
        json.dumps(
            {
                "due": total * args.batch,
                "answered": answered * args.batch,
                "requests": total,
                "statuses": dict(run.statuses),
                "errors": dict(run.errors),
                "connections": run.opened,
                "seconds": round(elapsed, 3),
                "rate": round(answered * args.batch / elapsed, 1),
                "sent_for_s": round(sent_for, 3),
                "p50_ms": pct(lat, 0.50),
                "p99_ms": pct(lat, 0.99),
                "max_ms": pct(lat, 1.0),
                "behind_p99_ms": pct(behind, 0.99),
                "behind_max_ms": pct(behind, 1.0),
            }
        )
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True, help="notifications per second")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--sub", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--call-records", required=True, help="comma list of callRecord ids")
    asyncio.run(main(ap.parse_args()))
