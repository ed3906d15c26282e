"""`ingest status`: queues, failed jobs, subscriptions and their expiry, ledger counts."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from core import checks, times
from core.settings import Settings
from ingest import health
from workers import registry
from workers.ledger import Ledger


def collect(settings: Settings, conn: redis.Redis) -> dict[str, Any]:
    """The status document of DESIGN §3.1 (and a little more)."""
    queue = Queue(settings.queue, connection=conn, serializer=JSONSerializer)
    now = datetime.now(UTC)
    subs = []
    checks = {h["id"]: h for h in health.subscriptions(conn, now)}
    for sub in registry.load_all(conn):
        entry = sub.public()
        entry["expires_in_seconds"] = times.seconds_until(sub.expires_at, now)
        check = checks.get(sub.id, {})
        for name in ("last_notification", "last_renewal", "last_error", "warnings"):
            entry[name] = check.get(name)
        subs.append(entry)
    return {
        "queues": {settings.queue: queue.count},
        "failed": FailedJobRegistry(queue=queue).count,
        "started": StartedJobRegistry(queue=queue).count,
        "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
        "subscriptions": subs,
        "meetings": Ledger(conn).outcome_counts(),
        "reconciliation": health.reconciliation(conn),
        "health_warnings": health.warnings(conn, now),
    }


def render(doc: dict[str, Any]) -> str:
    lines = ["queues:"]
    lines += [f"  {name:<20} {n} waiting" for name, n in doc["queues"].items()]
    lines.append(f"failed jobs: {doc['failed']}   running: {doc['started']}   "
                 f"scheduled: {doc['scheduled']}")  # fmt: skip
    lines.append(f"subscriptions: {len(doc['subscriptions'])}")
    for sub in doc["subscriptions"]:
        left = sub["expires_in_seconds"]
        expiry = "unknown expiry" if left is None else f"expires in {left // 60} min"
        lines.append(f"  {sub['id']}  {sub['resource']}  {expiry}")
        lines.append(
            f"    last notification {sub.get('last_notification') or 'never'}, "
            f"last renewal {sub.get('last_renewal') or 'never'}"
            + (f", last error: {sub['last_error']}" if sub.get("last_error") else "")
        )
    rec = doc.get("reconciliation") or {}
    if rec.get("at"):
        lines.append(
            f"reconciliation: {rec['at']}: found {rec.get('found', 0)}, "
            f"enqueued {rec.get('enqueued', 0)}"
            + (f", last error: {rec['last_error']}" if rec.get("last_error") else "")
        )
    lines += [f"WARNING: {w}" for w in doc.get("health_warnings") or []]
    lines.append("meetings: " + ", ".join(f"{k} {v}" for k, v in doc["meetings"].items()))
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    conn = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        doc = collect(settings, conn)
    except redis.RedisError as exc:
        raise checks.redis_unreachable(settings.redis_url, exc) from None
    print(json.dumps(doc) if args.json else render(doc))
    return 0
