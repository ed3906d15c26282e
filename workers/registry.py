"""The subscription registry in Redis: what the receiver accepts notifications for.

One hash per subscription (`ingest:subscription:{id}`) and a set of ids. `ingest subscriptions`
writes it; the receiver keeps an in-memory copy (refreshed periodically and on a miss) so that
checking an item costs no Redis round trip.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from core import defaults, keys

IDS_KEY = keys.SUBSCRIPTION_IDS
GENERATION_KEY = keys.GENERATION
# Resource kinds and the change types Graph sends for them.
KIND_CALL_RECORDS = "callRecords"
KIND_TRANSCRIPTS = "transcripts"
CHANGE_TYPES = {KIND_CALL_RECORDS: frozenset({"created", "updated"}),
                KIND_TRANSCRIPTS: frozenset({"created"})}  # fmt: skip


def subscription_key(subscription_id: str) -> str:
    return f"{keys.SUBSCRIPTION}:{subscription_id}"


@dataclass(frozen=True)
class Subscription:
    """One Graph subscription as the product holds it (the clientState is a secret)."""

    id: str
    resource: str
    kind: str
    client_state: str
    tenant_id: str = ""
    expires_at: str = ""
    user_id: str = ""
    change_type: str = ""

    @classmethod
    def from_hash(cls, data: Mapping[Any, Any]) -> Subscription:
        def text(v: Any) -> str:
            return v.decode() if isinstance(v, bytes) else v

        values = {text(k): text(v) for k, v in data.items()}
        known = {k: values.get(k, "") for k in cls.__dataclass_fields__}
        return cls(**known)

    def to_hash(self) -> dict[str, str]:
        return asdict(self)

    def public(self) -> dict[str, Any]:
        """Everything but the clientState, for listings and `--json`."""
        out: dict[str, Any] = self.to_hash()
        out.pop("client_state")
        return out


def save(conn: redis.Redis, sub: Subscription) -> None:
    with conn.pipeline() as pipe:
        pipe.hset(subscription_key(sub.id), mapping=dict(sub.to_hash()))  # type: ignore[arg-type]
        pipe.sadd(IDS_KEY, sub.id)
        pipe.execute()


def remove(conn: redis.Redis, subscription_id: str) -> None:
    with conn.pipeline() as pipe:
        pipe.delete(subscription_key(subscription_id))
        pipe.srem(IDS_KEY, subscription_id)
        pipe.execute()


def mark(conn: redis.Redis) -> None:
    """Record that the registry is set up (the generation marker, kept if already there)."""
    conn.set(GENERATION_KEY, secrets.token_hex(8), nx=True)


def load_all(conn: redis.Redis) -> list[Subscription]:
    ids = sorted(i.decode() for i in conn.smembers(IDS_KEY))  # type: ignore[union-attr]
    with conn.pipeline(transaction=False) as pipe:
        for sub_id in ids:
            pipe.hgetall(subscription_key(sub_id))
        rows = pipe.execute()
    return [Subscription.from_hash(row) for row in rows if row]


async def aload_all(conn: aioredis.Redis) -> dict[str, Subscription]:
    members: set[Any] = await conn.smembers(IDS_KEY)
    ids = sorted(i.decode() if isinstance(i, bytes) else str(i) for i in members)
    async with conn.pipeline(transaction=False) as pipe:
        for sub_id in ids:
            pipe.hgetall(subscription_key(sub_id))
        rows: Iterable[Mapping[bytes, bytes]] = await pipe.execute()
    subs = (Subscription.from_hash(row) for row in rows if row)
    return {s.id: s for s in subs}


class RegistryCache:
    """The receiver's copy of the registry: reloaded every `refresh_s`, or on a miss at most
    once every `miss_refresh_s` (so unknown ids sent by a stranger cannot hammer Redis).
    `wiped` says, as of the last reload, that the generation marker is missing: Redis lost
    the registry, and an unknown id may be a subscription it held."""

    def __init__(
        self,
        refresh_s: float = defaults.REGISTRY_REFRESH_SECONDS,
        miss_refresh_s: float = defaults.REGISTRY_MISS_REFRESH_SECONDS,
    ) -> None:
        self.refresh_s = refresh_s
        self.miss_refresh_s = miss_refresh_s
        self._subs: dict[str, Subscription] = {}
        self._loaded_at = float("-inf")
        self.wiped = False

    @property
    def size(self) -> int:
        """Subscriptions in this copy (the `ingest_subscriptions_known` gauge)."""
        return len(self._subs)

    async def lookup(self, conn: aioredis.Redis, ids: set[str]) -> dict[str, Subscription]:
        """The known subscriptions among `ids`, reloading when stale or when one is unknown."""
        now = time.monotonic()
        age = now - self._loaded_at
        missing = any(i not in self._subs for i in ids)
        if age >= self.refresh_s or (missing and age >= self.miss_refresh_s):
            self._subs = await aload_all(conn)
            self.wiped = not await conn.exists(GENERATION_KEY)
            self._loaded_at = now
        return {i: self._subs[i] for i in ids if i in self._subs}
