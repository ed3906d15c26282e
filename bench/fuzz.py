"""Byte-level fuzz of `ingest serve`: mutated and random requests for a while; any 5xx or stall
is a finding.

Starts its own Redis and a real receiver (the registry set up as `subscriptions ensure`
leaves it), then for FUZZ_SECONDS (default 30) sends, from FUZZ_CONCURRENCY connections at
once (default 8), requests made by bench/fuzz_cases.py: genuine notifications and batches,
JSON-level and byte-level mutations of them, random bytes, deep nesting, oversized batches,
broken framing (wrong, doubled or missing Content-Length, chunked bodies with bad sizes,
both framings at once), Content-Encodings the bytes do not match, odd or missing content
types, validationToken query strings, malformed heads, pipelined requests. Two more
connections send requests that never finish (a body shorter than its Content-Length, an
unterminated chunked body) and watch that the receiver closes them.

None of DESIGN's 503s can hold here (Redis is up, the registry is set up, at most ten bodies
of at most 1 MiB are in flight against a 32 MiB budget), so a finding is:
- any 5xx answer;
- a stall: a whole request that gets no answer within STALL_SECONDS (5);
- a whole, well-formed request whose connection is closed without an answer;
- an unfinished body whose connection the receiver still holds 3 s after its body deadline;
- /healthz slower than STALL_SECONDS meanwhile, the receiver gone, an ERROR in its log, or
  a genuine notification not stored afterwards.

Each finding's request is written to FUZZ_OUT (default: a new temporary directory) to replay.
FUZZ_SEED repeats a run (the seed is printed). Exits 1 on a finding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rq import Queue  # noqa: E402
from rq.serializers import JSONSerializer  # noqa: E402

from bench.fuzz_cases import Case, Cases, Material  # noqa: E402
from core import defaults  # noqa: E402
from ingest.embedded_redis import RedisServer, free_port  # noqa: E402
from workers import registry  # noqa: E402

SECONDS = float(os.environ.get("FUZZ_SECONDS", "30"))
CONCURRENCY = int(os.environ.get("FUZZ_CONCURRENCY", "8"))
SEED = int(os.environ.get("FUZZ_SEED", str(random.SystemRandom().randrange(2**32))))
STALL_SECONDS = 5.0
UNFINISHED_GRACE = 3.0  # past the body deadline, before a held connection is a finding
TENANT = "11111111-1111-1111-1111-111111111111"
SUB = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
STATE = "fuzz-client-state-0123456789abcdef"


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)  # closed unanswered, by framing
    findings: list[str] = field(default_factory=list)
    healthz_max: float = 0.0
    out: Path | None = None  # made at the first finding

    def finding(self, what: str, case: Case) -> None:
        if self.out is None:
            self.out = Path(os.environ.get("FUZZ_OUT") or tempfile.mkdtemp(prefix="ingest-fuzz-"))
            self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"finding-{len(self.findings) + 1:03d}.bin"
        path.write_bytes(case.data)
        self.findings.append(f"{what} [{case.kind}] -> {path}")


class NotHttp(Exception):
    """What came back is not an HTTP/1.x status line."""


async def read_answer(reader: asyncio.StreamReader, no_body: bool = False) -> int | None:
    """The status of the next final answer (after any 100 Continue), its body read (none
    for a HEAD request); None when the connection closed first."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        # aiohttp answers in the version it was asked in (even "HTTP/2.0")
        if not re.match(rb"HTTP/[0-9]\.[0-9] [1-5][0-9][0-9] ", head):
            raise NotHttp(head[:200])
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length and not no_body:
            try:
                await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return status
        if status != 100:
            return status


async def send(port: int, case: Case, tally: Tally) -> None:
    """One request on its own connection; its answer judged (see the module docstring). The
    bytes go out while the answer is awaited: the receiver may answer (413) and close before
    it has read a large body."""
    tally.kinds[case.kind] += 1
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sending = asyncio.create_task(write(writer, case.data))
    try:
        if not case.complete:
            await unfinished(reader, case, tally)
            return
        first = None
        for n in range(2 if case.pipelined else 1):
            try:
                no_body = n == 0 and case.data.startswith(b"HEAD ")
                status = await asyncio.wait_for(read_answer(reader, no_body), STALL_SECONDS)
            except NotHttp as exc:
                tally.outcomes["not HTTP"] += 1
                tally.finding(f"an answer that is not HTTP: {exc.args[0]!r}", case)
                return
            except TimeoutError:
                tally.outcomes["stall"] += 1
                tally.finding(f"no answer within {STALL_SECONDS:g} s (answer {n + 1})", case)
                return
            if status is None:
                if case.oversized:
                    tally.outcomes["oversized: closed while sending"] += 1
                    return
                if n == 1:  # the first was answered (a 4xx), then the connection closed
                    tally.outcomes[f"pipelined request dropped after a {first}"] += 1
                    return
                tally.outcomes["closed without an answer"] += 1
                tally.closed[case.kind.split(", ", 1)[-1]] += 1
                if case.well_formed:
                    tally.finding("a well-formed request closed without an answer", case)
                return
            tally.statuses[str(status)] += 1
            first = status
            if status >= 500:
                tally.finding(f"answered {status}", case)
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        writer.close()


async def write(writer: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        writer.write(data)
        await writer.drain()


async def unfinished(reader: asyncio.StreamReader, case: Case, tally: Tally) -> None:
    """A request whose body never finishes: the receiver must close it by its deadline."""
    limit = defaults.BODY_TIMEOUT_SECONDS + UNFINISHED_GRACE
    try:
        status = await asyncio.wait_for(read_answer(reader), limit)
    except TimeoutError:
        tally.outcomes["unfinished: still held"] += 1
        tally.finding(f"unfinished body still held after {limit:g} s", case)
        return
    if status is None:
        tally.outcomes["unfinished: closed"] += 1
    else:
        tally.outcomes[f"unfinished: answered {status}"] += 1
        tally.statuses[str(status)] += 1
        if status >= 500:
            tally.finding(f"answered {status}", case)


async def worker(port: int, cases: Cases, stop_at: float, tally: Tally, complete: bool) -> None:
    while time.monotonic() < stop_at:
        case = cases.complete() if complete else cases.unfinished()
        try:
            await send(port, case, tally)
        except OSError as exc:  # connecting failed: the receiver is gone or refusing
            tally.outcomes[f"connect failed: {type(exc).__name__}"] += 1
            tally.finding(f"could not connect: {exc}", case)
            await asyncio.sleep(0.5)


async def probe(port: int, stop_at: float, tally: Tally) -> None:
    """/healthz every 100 ms: the event loop must stay free whatever the fuzz sends."""
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n")
            status = await asyncio.wait_for(read_answer(reader), 30)
            writer.close()
        except (OSError, TimeoutError):
            status = None
        took = time.monotonic() - t0
        tally.healthz_max = max(tally.healthz_max, took)
        if status != 200 or took > STALL_SECONDS:
            probe_case = Case("healthz", b"GET /healthz", True, True)
            tally.finding(f"/healthz answered {status} in {took:.1f} s", probe_case)
        await asyncio.sleep(0.1)


async def fuzz(port: int, material: Material, tally: Tally) -> None:
    stop_at = time.monotonic() + SECONDS
    rng = random.Random(SEED)
    tasks = [
        worker(port, Cases(material, random.Random(rng.random())), stop_at, tally, True)
        for _ in range(CONCURRENCY)
    ]
    tasks += [
        worker(port, Cases(material, random.Random(rng.random())), stop_at, tally, False)
        for _ in range(2)
    ]
    await asyncio.gather(*tasks, probe(port, stop_at, tally))


def genuine_stored(port: int, material: Material, conn: redis.Redis) -> bool:
    queue = Queue("ingest", connection=conn, serializer=JSONSerializer)
    before = queue.count
    body = json.dumps({"value": [material.item()]}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graph/notifications", data=body, method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status == 202 and queue.count == before + 1


def main() -> int:
    tally = Tally()
    material = Material(SUB, STATE, TENANT)
    with RedisServer() as srv, tempfile.NamedTemporaryFile(suffix=".log") as log:
        url = f"{srv.url}/0"
        conn = redis.Redis.from_url(url)
        registry.mark(conn)
        registry.save(conn, registry.Subscription(
            id=SUB, resource="communications/callRecords", kind="callRecords",
            client_state=STATE, tenant_id=TENANT,
        ))  # fmt: skip
        port = free_port()
        env = dict(os.environ, REDIS_URL=url, GRAPH_TENANT_ID=TENANT,
                   # rich items' tokens are checked against keys from here: nothing answers
                   GRAPH_AUTHORITY=f"https://127.0.0.1:{free_port()}")  # fmt: skip
        receiver = subprocess.Popen(
            [str(Path(sys.executable).parent / "ingest"), "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_ready(port)
            started = time.monotonic()
            asyncio.run(fuzz(port, material, tally))
            elapsed = time.monotonic() - started
            if receiver.poll() is not None:
                tally.findings.append(f"the receiver exited with {receiver.returncode}")
            elif not genuine_stored(port, material, conn):
                tally.findings.append("a genuine notification was not stored after the fuzz")
        finally:
            receiver.terminate()
            receiver.wait(30)
        errors = [line for line in Path(log.name).read_text(errors="replace").splitlines()
                  if '"level": "error"' in line or '"level": "critical"' in line]  # fmt: skip
        for line in errors[:5]:
            tally.findings.append(f"ERROR in the receiver's log: {line[:300]}")
    report(tally, elapsed, len(errors))
    return 1 if tally.findings else 0


def wait_ready(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the receiver did not answer on port {port}")


def report(tally: Tally, elapsed: float, error_lines: int) -> None:
    sent = sum(tally.kinds.values())
    print(f"fuzz: {sent} requests in {elapsed:.0f} s from {CONCURRENCY} connections (+2 that "
          f"never finish their bodies) against `ingest serve`; seed {SEED}")  # fmt: skip
    bodies: Counter[str] = Counter()
    framings: Counter[str] = Counter()
    for kind, n in tally.kinds.items():
        body, *how = kind.split(", ")
        bodies[body] += n
        for part in how:
            framings[part] += n
    print("  bodies: " + ", ".join(f"{k} {n}" for k, n in sorted(bodies.items())))
    print("  of which: " + ", ".join(f"{k} {n}" for k, n in sorted(framings.items())))
    print("  answers: " + ", ".join(f"{s} {n}" for s, n in sorted(tally.statuses.items())))
    print("  other outcomes: " + (", ".join(f"{k} {n}" for k, n in sorted(tally.outcomes.items()))
                                  or "none"))  # fmt: skip
    if tally.closed:
        print("  closed without an answer (malformed requests only), by how they were broken: "
              + ", ".join(f"{k} {n}" for k, n in tally.closed.most_common()))  # fmt: skip
    print(f"  slowest /healthz meanwhile: {tally.healthz_max * 1000:.0f} ms; ERROR lines in the "
          f"receiver's log: {error_lines}")  # fmt: skip
    if tally.findings:
        print(f"FINDINGS ({len(tally.findings)}):")
        for line in tally.findings[:50]:
            print(f"  {line}")
    else:
        print("findings: none (no 5xx, no stall)")


if __name__ == "__main__":
    raise SystemExit(main())
