"""The ECI user registry in Redis: who the product processes meetings for.

One hash `ingest:users` (directory id -> JSON record). Admin-added users are resolved through
Graph (`GET /users/{upn}`) so the registry holds the directory id the policy matches on;
users of the connect flow land in the same hash with `source = "connect"`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import redis

from core import keys, vault
from core.exceptions import BadInput
from core.settings import Settings
from workers.graph.api import GraphApi
from workers.graph.client import GraphClient

USERS_KEY = keys.USERS


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
        # A connected user's delegated tokens go with them.
        vault.delete_token_cache(conn, user.id)
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
