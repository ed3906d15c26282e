"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, N connections).

Run in its own process so that it does not share a core's event loop with the server:
    python bench/load.py --port P --connections 32 --seconds 5 --batch 1 \
        --tenant T --sub S --state C
Prints one JSON line: requests, notifications, seconds, statuses, latency percentiles (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter


def notification(
    tenant: str, sub: str, state: str, cr_id: str | None = None, change: str = "created"
) -> dict[str, object]:
    """One callRecord notification item (a new callRecord id unless `cr_id` is given)."""
    cr_id = cr_id or str(uuid.uuid4())
    return {
        "subscriptionId": sub,
        "clientState": state,
        "changeType": change,
        "resource": f"communications/callRecords/{cr_id}",
        "subscriptionExpirationDateTime": "2026-12-03T00:00:00+00:00",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.callRecord",
            "@odata.id": f"communications/callRecords/{cr_id}",
            "id": cr_id,
        },
        "tenantId": tenant,
    }


def request_bytes(args: argparse.Namespace) -> bytes:
    body = json.dumps(
        {"value": [notification(args.tenant, args.sub, args.state) for _ in range(args.batch)]}
    ).encode()
    head = (
        f"POST /graph/notifications HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer (head and Content-Length body); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return int(head[9:12])


async def connection(
    args: argparse.Namespace, stop_at: float, lat: list[float], statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    try:
        while time.perf_counter() < stop_at:
            data = request_bytes(args)  # a new callRecord id every time: no dedupe shortcut
            t0 = time.perf_counter()
            writer.write(data)
            status = await read_answer(reader)
            lat.append(time.perf_counter() - t0)
            statuses[status] += 1
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    lat: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    stop_at = started + args.seconds
    await asyncio.gather(
        *(connection(args, stop_at, lat, statuses) for _ in range(args.connections))
    )
    elapsed = time.perf_counter() - started
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else 0.0

    print(
        json.dumps(
            {
                "requests": len(lat),
                "notifications": len(lat) * args.batch,
                "seconds": round(elapsed, 3),
                "statuses": dict(statuses),
                "p50_ms": pct(0.50),
                "p99_ms": pct(0.99),
                "max_ms": pct(1.0),
            }
        )
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--sub", required=True)
    ap.add_argument("--state", required=True)
    asyncio.run(main(ap.parse_args()))
