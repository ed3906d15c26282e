"""The subscriptions' health: each one the product wants is held in the registry and in Graph,
is not near expiry, and renews (workers/registry.py, ingest/health.py, one Graph listing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from core.settings import Settings
from ingest import health
from ingest.checkup import Check, failed, passed
from workers.subscriptions import wanted

NAME = "subscriptions"
FIX = (
    "run `ingest subscriptions ensure`, and keep the `clock` process running so that they "
    "are renewed before they expire"
)


def check(
    settings: Settings, conn: redis.Redis, graph_list: Callable[[], list[dict[str, Any]]]
) -> list[Check]:
    """`graph_list` lists Graph's subscriptions (GET /subscriptions)."""
    now = datetime.now(UTC)
    held = health.subscriptions(conn, now)
    remote = {str(s.get("id")) for s in graph_list()}
    problems = []
    for want in wanted(settings, conn):
        if not any(_same(h["resource"], want.resource) for h in held):
            problems.append(f"none held for {want.resource}")
    for sub in held:
        label = f"{sub['id']} ({sub['resource']})"
        if sub["id"] not in remote:
            problems.append(f"{label} is no longer in Graph")
        left = sub["expires_in_seconds"]
        if left is not None and left <= 0:
            problems.append(f"{label} expired")
        else:
            problems += [f"{label} {w}" for w in sub["warnings"]]
    if problems:
        return [failed(NAME, "; ".join(problems), FIX)]
    lefts = [s["expires_in_seconds"] for s in held if s["expires_in_seconds"] is not None]
    nearest = f", the nearest expires in {min(lefts) // 60} min" if lefts else ""
    detail = f"{len(held)} held in Graph, none expiring or failing to renew{nearest}"
    return [passed(NAME, detail)]


def _same(a: str, b: str) -> bool:
    return a.strip("/").lower() == b.strip("/").lower()
