"""The ledger in Redis: what the product saw and decided, per resource and per meeting.

Keys: `ingest:ledger:resource:{kind}:{id}` (a hash per notified resource) and
`ingest:ledger:outcomes` (meeting outcome -> count) for `ingest status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import redis

from ingest import defaults

PREFIX = f"{defaults.KEY_PREFIX}:ledger"
OUTCOMES_KEY = f"{PREFIX}:outcomes"
OUTCOMES = ("pushed", "skipped", "no_transcript", "failed")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def resource_key(kind: str, resource_id: str) -> str:
    return f"{PREFIX}:resource:{kind}:{resource_id}"


def resource_id(payload: Mapping[str, Any]) -> str:
    """The id a notification is about: the callRecord, the transcript, or the subscription."""
    ids = payload.get("ids") or {}
    return str(ids.get("callRecordId") or ids.get("transcriptId") or payload["subscriptionId"])


class Ledger:
    """Reads and writes ledger entries on one Redis connection."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn

    def record_notification(self, payload: Mapping[str, Any]) -> dict[str, str]:
        """Note that a notification about a resource arrived; returns the entry as stored."""
        kind = str(payload.get("kind", "unknown"))
        key = resource_key(kind, resource_id(payload))
        event = str(payload.get("changeType") or payload.get("lifecycleEvent") or "")
        now = _now()
        with self.conn.pipeline() as pipe:
            pipe.hsetnx(key, "first_seen", now)
            pipe.hset(key, mapping={
                "kind": kind,
                "resource": str(payload.get("resource", "")),
                "subscription_id": str(payload.get("subscriptionId", "")),
                "last_seen": now,
                "last_event": event,
                "status": "received",
            })  # fmt: skip
            pipe.hincrby(key, "notifications", 1)
            pipe.hgetall(key)
            entry = pipe.execute()[-1]
        return {k.decode(): v.decode() for k, v in entry.items()}

    def resource(self, kind: str, rid: str) -> dict[str, str]:
        entry: dict[bytes, bytes] = self.conn.hgetall(resource_key(kind, rid))  # type: ignore[assignment]
        return {k.decode(): v.decode() for k, v in entry.items()}

    def outcome_counts(self) -> dict[str, int]:
        """Meetings by outcome; every outcome present, zero when none."""
        raw: dict[bytes, bytes] = self.conn.hgetall(OUTCOMES_KEY)  # type: ignore[assignment]
        counts = dict.fromkeys(OUTCOMES, 0)
        counts.update({k.decode(): int(v) for k, v in raw.items()})
        return counts
