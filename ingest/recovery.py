"""Redis data loss survived: the clock notices a wiped Redis and puts the product back.

A Redis that lost its data (a flush, a replaced instance, a failover to an empty replica)
loses the subscription registry, so the receiver could verify no notification; the ECI user
registry and the connected users' sealed tokens, which nothing can rebuild; the reconciliation
watermark; the ledger and the queue. The generation marker (core/keys.py `GENERATION`,
written by `Manager.ensure`, a random value) tells: while it is missing, the receiver answers
`503` to items of unknown subscriptions (Graph retries them); when it is missing or another
value than the one the clock's copy was taken under, the clock's leader, at its next tick:

1. writes back, from its own copy, the ECI users, their sealed tokens and the watermark
   (each only where missing: anything written since wins);
2. runs `Manager.ensure`: Graph's subscriptions whose clientState is lost are replaced by
   new ones, and the marker is written again;
3. runs a reconciliation pass from the last known watermark minus the overlap, which brings
   every callRecord whose notification or job the wipe took. Meetings handled before the wipe
   are handled again: Salesforce upserts on external ids (DESIGN §5.1) keep them single.

The copy lives in each clock's memory (leader and followers), taken at each tick while the
marker is there; a clock started after the wipe has none and logs which command restores the
users.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from core import keys, logs
from core.vault import TOKENS_PREFIX

log = logs.get_logger("ingest.recovery")


class Keeper:
    """Holds the copy of what Redis cannot rebuild; restores it when the marker is gone."""

    def __init__(
        self,
        conn: redis.Redis,
        ensure: Callable[[], list[dict[str, Any]]],
        reconcile: Callable[[], dict[str, Any]],
    ) -> None:
        self.conn = conn
        self.ensure = ensure
        self.reconcile = reconcile
        self.users: dict[bytes, bytes] = {}
        self.tokens: dict[bytes, bytes] = {}  # user id -> sealed token cache
        self.watermark: bytes | None = None
        self.generation: bytes | None = None  # the marker's value the copy was taken under
        self.recoveries = 0

    def check(self) -> dict[str, Any] | None:
        """One leader tick: copy while Redis holds the marker the copy was taken under;
        recover when the marker is missing, or is another one (Redis was wiped and set up
        again, by `ingest subscriptions ensure` say, before this clock noticed)."""
        marker = self.conn.get(keys.GENERATION)
        if marker is not None and self.generation in (None, marker) and self.remember():
            return None
        return self.recover()

    def remember(self) -> bool:
        """Copy users, tokens and watermark under the marker (any marker: a follower adopts
        what the leader restored); False, the copy kept, when it is missing. The marker is
        read with the users and again after the tokens: a copy taken across a wipe is thrown
        away, never kept in place of the last good one."""
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.get(keys.GENERATION)
            pipe.hgetall(keys.USERS)
            pipe.get(keys.RECONCILE_WATERMARK)
            marker, users, watermark = pipe.execute()
        if marker is None:
            return False
        ids = list(users)
        sealed: list[bytes | None] = (
            self.conn.mget([TOKENS_PREFIX.encode() + i for i in ids]) if ids else []  # type: ignore[assignment]
        )
        if self.conn.get(keys.GENERATION) != marker:
            return False
        self.users = dict(users)
        # Only tokens Redis holds now: a user who disconnected is not reconnected by a wipe.
        self.tokens = {i: t for i, t in zip(ids, sealed, strict=True) if t is not None}
        self.watermark = watermark
        self.generation = marker
        return True

    def recover(self) -> dict[str, Any]:
        """Restore the copy, re-create the subscriptions, reconcile: one clock pass."""
        self.recoveries += 1
        log.warning("redis_wiped", hint="the generation marker is missing: restoring users, "
                    "tokens and watermark, re-creating subscriptions, reconciling",
                    users=len(self.users), tokens=len(self.tokens),
                    watermark=self.watermark.decode() if self.watermark else None)  # fmt: skip
        with self.conn.pipeline(transaction=True) as pipe:
            for user_id, user in self.users.items():
                pipe.hsetnx(keys.USERS, user_id, user)
            for user_id, token in self.tokens.items():
                pipe.set(TOKENS_PREFIX.encode() + user_id, token, nx=True)
            if self.watermark is not None:
                pipe.set(keys.RECONCILE_WATERMARK, self.watermark, nx=True)
            pipe.execute()
        if not self.users:
            log.error("eci_users_unknown", hint="no copy of the ECI user registry: add the "
                      "users again (`ingest users add EMAIL`) and reconnect them")  # fmt: skip
        created = [r for r in self.ensure() if r.get("action") == "created"]
        reconciled = self.reconcile()
        self.generation = None  # the next tick copies what Redis now holds
        result = {"users_restored": len(self.users), "tokens_restored": len(self.tokens),
                  "subscriptions_created": len(created), **reconciled}  # fmt: skip
        log.warning("redis_wipe_recovered", **result)
        return result
