"""`ingest subscriptions ensure|list|renew|delete [--json]`: over workers/subscriptions.py."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import redis

from core.settings import Settings
from workers.subscriptions import GraphSubscriptions, Manager


def _render(action: str, rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "no subscriptions"
    lines = []
    for row in rows:
        state = row.get("action") or ("in Graph" if row.get("in_graph") else "missing in Graph")
        lines.append(f"{state:<10} {row.get('id')}  {row.get('resource')}  "
                     f"expires {row.get('expires_at', '?')}")  # fmt: skip
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings.require_graph()
    if args.action in ("ensure", "renew"):
        settings.require_public_url()
    conn = redis.Redis.from_url(settings.redis_url)
    api = GraphSubscriptions(settings)
    try:
        manager = Manager(settings, conn, api)
        rows = {
            "ensure": manager.ensure,
            "renew": manager.renew,
            "delete": manager.delete_all,
            "list": manager.listing,
        }[args.action]()
    finally:
        api.close()
        conn.close()
    print(json.dumps({"subscriptions": rows}) if args.json else _render(args.action, rows))
    return 0
