"""`ingest users add EMAIL|remove EMAIL|list [--json]`: the command over workers/users.py."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

import redis

from core.exceptions import BadInput
from core.settings import Settings
from workers.subscriptions import GraphSubscriptions, Manager
from workers.users import add, all_users, remove, resolve


def run(args: argparse.Namespace, settings: Settings) -> int:
    conn = redis.Redis.from_url(settings.redis_url)
    try:
        return _run(args, settings, conn)
    finally:
        conn.close()


def _run(args: argparse.Namespace, settings: Settings, conn: redis.Redis) -> int:
    action, email = args.action, (args.email or "").strip()
    if action in ("add", "remove") and ("@" not in email or len(email) > 320):
        raise BadInput(f"users {action} needs the user's e-mail address")
    doc: dict[str, Any]
    if action == "add":
        user = add(conn, resolve(settings, email))
        doc, text = {"added": asdict(user)}, f"added {user.upn} ({user.id})"
    elif action == "remove":
        gone = remove(conn, email)
        if gone is None:
            raise BadInput(f"{email} is not in the ECI user registry")
        doc, text = {"removed": asdict(gone)}, f"removed {gone.upn} ({gone.id})"
    else:
        users = all_users(conn)
        doc = {"users": [asdict(u) for u in users]}
        rows = [f"{u.upn:<40} {u.id}  {u.source:<8} {u.name}" for u in users]
        text = "\n".join(rows) if rows else "no ECI users"
    if action in ("add", "remove"):
        changed = _sync_subscriptions(settings, conn)
        if changed is not None:
            doc["subscriptions"] = changed
            text += "".join(f"\n{r['action']} subscription {r['resource']}" for r in changed)
    print(json.dumps(doc) if args.json else text)
    return 0


def _sync_subscriptions(settings: Settings, conn: redis.Redis) -> list[dict[str, Any]] | None:
    """Create the added user's transcript subscription, or delete the removed user's, now
    (the clock would do it on its next pass). Needs INGEST_PUBLIC_URL; without it nothing
    changes and `ingest subscriptions ensure` does it later."""
    if not settings.public_url:
        print(
            "ingest users: INGEST_PUBLIC_URL is not set; run `ingest subscriptions ensure` "
            "to bring the transcript subscriptions in line",
            file=sys.stderr,
        )
        return None

    api = GraphSubscriptions(settings)
    try:
        report = Manager(settings, conn, api).ensure()
    finally:
        api.close()
    return [r for r in report if r.get("action") in ("created", "deleted")]
