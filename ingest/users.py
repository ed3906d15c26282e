"""The ECI user registry in Redis, and `ingest users add EMAIL|remove EMAIL|list [--json]`.

One hash `ingest:users` (directory id -> JSON record). Admin-added users are resolved through
Graph (`GET /users/{upn}`) so the registry holds the directory id the policy matches on;
users of the connect flow land in the same hash with `source = "connect"`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from ingest import defaults
from ingest.exceptions import BadInput
from ingest.settings import Settings

USERS_KEY = f"{defaults.KEY_PREFIX}:users"


@dataclass(frozen=True)
class EciUser:
    """One authenticated ECI user: the directory id is what meetings are matched on."""

    id: str
    upn: str
    name: str = ""
    source: str = "admin"
    added_at: str = ""


def add(conn: redis.Redis, user: EciUser) -> EciUser:
    stamped = user if user.added_at else EciUser(**{**asdict(user), "added_at": _now()})
    conn.hset(USERS_KEY, stamped.id.lower(), json.dumps(asdict(stamped)))
    return stamped


def all_users(conn: redis.Redis) -> list[EciUser]:
    raw: dict[bytes, bytes] = conn.hgetall(USERS_KEY)  # type: ignore[assignment]
    users = [EciUser(**json.loads(v)) for v in raw.values()]
    return sorted(users, key=lambda u: u.upn.lower())


def find(conn: redis.Redis, email_or_id: str) -> EciUser | None:
    wanted = email_or_id.strip().lower()
    return next((u for u in all_users(conn) if wanted in (u.id.lower(), u.upn.lower())), None)


def remove(conn: redis.Redis, email_or_id: str) -> EciUser | None:
    user = find(conn, email_or_id)
    if user is not None:
        conn.hdel(USERS_KEY, user.id.lower())
        # A connected user's delegated tokens (ingest/vault.py) go with them.
        conn.delete(f"{defaults.KEY_PREFIX}:tokens:{user.id.lower()}")
    return user


def identifiers(conn: redis.Redis) -> frozenset[str]:
    """Every directory id and UPN in the registry, lower-cased: what the policy matches."""
    out: set[str] = set()
    for user in all_users(conn):
        out.add(user.id.lower())
        if user.upn:
            out.add(user.upn.lower())
    return frozenset(out)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def resolve(settings: Settings, email: str) -> EciUser:
    """The tenant's user with this UPN or e-mail, from Graph (one request)."""
    from workers.graph.api import GraphApi
    from workers.graph.client import GraphClient

    client = GraphClient(settings)
    try:
        found = GraphApi(client).user(email)
    finally:
        client.close()
    if not found or not found.get("id"):
        raise BadInput(f"no user {email} in the tenant")
    return EciUser(
        id=str(found["id"]).lower(),
        upn=str(found.get("userPrincipalName") or email),
        name=str(found.get("displayName") or ""),
    )


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
    from ingest.subscriptions import GraphSubscriptions, Manager

    api = GraphSubscriptions(settings)
    try:
        report = Manager(settings, conn, api).ensure()
    finally:
        api.close()
    return [r for r in report if r.get("action") in ("created", "deleted")]
