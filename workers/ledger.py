"""The ledger in Redis: what the product saw and decided, per resource and per meeting.

Keys (prefix `ingest:ledger`):
- `resource:{kind}:{id}`: a hash per notified resource (callRecord, transcript, subscription);
- `meeting:{key}`: a hash per meeting (Graph ids, decision, outcome, timestamps, attempts,
  last error) and `meeting:{key}:events`, its story as a capped list of JSON lines;
- `alias:{cr|tr|om|url}:{id}`: the meeting key a callRecord id, transcript id, online meeting
  id or join link (those two scoped to the occurrence's day; unscoped: the latest occurrence)
  leads to, so that every path and `ingest explain` reach the same meeting;
- `outcomes`: meeting outcome -> count, changed exactly once per outcome change (`ingest
  status`);
- `latest`: the meetings whose outcome was set last (a sorted set by time, capped at
  `defaults.OPS_LATEST_MEETINGS`), for the ops page.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis

from core import defaults, keys

PREFIX = keys.LEDGER
OUTCOMES_KEY = keys.OUTCOMES
# subscription id -> when its last notification was handled (health: ingest/health.py).
SUBSCRIPTION_SEEN_KEY = keys.SUBSCRIPTION_SEEN
OUTCOMES = ("pushed", "skipped", "no_transcript", "failed")
SETTLED = frozenset({"pushed", "skipped", "no_transcript"})
MAX_EVENTS = 200
LATEST_KEY = keys.LATEST_MEETINGS

# Returns the key an alias already leads to, else maps every free alias to ARGV[1].
_CLAIM = """
local found = false
for _, k in ipairs(KEYS) do
  found = redis.call('GET', k)
  if found then break end
end
local key = found or ARGV[1]
for _, k in ipairs(KEYS) do redis.call('SET', k, key, 'NX') end
return key
"""
# Sets the outcome; moves the meeting between counts only when the outcome changes. Every
# call (a meeting pushed again after an update too) moves it to the top of the latest index.
_OUTCOME = """
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -1 - tonumber(ARGV[5]))
local old = redis.call('HGET', KEYS[1], 'outcome')
if old == ARGV[1] then return 0 end
if old and old ~= '' then redis.call('HINCRBY', KEYS[2], old, -1) end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[1], 'outcome', ARGV[1], 'outcome_at', ARGV[2], 'updated_at', ARGV[2])
return 1
"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def resource_key(kind: str, resource_id: str) -> str:
    return f"{PREFIX}:resource:{kind}:{resource_id}"


def meeting_hash(key: str) -> str:
    """The Redis key of the meeting's ledger hash (`key` is the product's meeting key)."""
    return f"{PREFIX}:meeting:{key}"


def alias_key(kind: str, value: str) -> str:
    if kind == "url":  # join links are long and full of punctuation
        value = hashlib.sha256(value.encode()).hexdigest()
    elif kind == "cr":
        value = value.lower()
    return f"{PREFIX}:alias:{kind}:{value}"


def resource_id(payload: Mapping[str, Any]) -> str:
    """The id a notification is about: the callRecord, the transcript, or the subscription."""
    ids = payload.get("ids") or {}
    return str(ids.get("callRecordId") or ids.get("transcriptId") or payload["subscriptionId"])


def _decode(entry: Mapping[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in entry.items()
    }


class Ledger:
    """Reads and writes ledger entries on one Redis connection."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self._claim = conn.register_script(_CLAIM)
        self._outcome = conn.register_script(_OUTCOME)

    # resources ---------------------------------------------------------------------------
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
            sub_id = str(payload.get("subscriptionId") or "")
            if sub_id and payload.get("source") != "reconciliation":
                pipe.hset(SUBSCRIPTION_SEEN_KEY, sub_id, now)
            pipe.hgetall(key)
            entry = pipe.execute()[-1]
        return _decode(entry)

    def resource(self, kind: str, rid: str) -> dict[str, str]:
        entry: dict[bytes, bytes] = self.conn.hgetall(resource_key(kind, rid))  # type: ignore[assignment]
        return _decode(entry)

    def resource_error(self, kind: str, rid: str, error: str, meeting: str | None = None) -> None:
        """A failure before the meeting was known (or for a resource), kept for `explain`."""
        fields = {"status": "failed", "last_error": error, "last_error_at": _now()}
        if meeting:
            fields["meeting_key"] = meeting
        self.conn.hset(resource_key(kind, rid), mapping=fields)  # type: ignore[arg-type]

    def link_resource(self, kind: str, rid: str, meeting: str) -> None:
        self.conn.hset(resource_key(kind, rid), mapping={"meeting_key": meeting,
                                                          "status": "linked"})  # fmt: skip

    # aliases -----------------------------------------------------------------------------
    def alias(self, kind: str, value: str | None) -> str | None:
        if not value:
            return None
        found = self.conn.get(alias_key(kind, value))
        return found.decode() if isinstance(found, bytes) else None

    def claim(self, aliases: Iterable[tuple[str, str | None]], candidate: str) -> str:
        """The meeting key these ids lead to: an existing one, else `candidate` (atomic)."""
        keys = [alias_key(kind, value) for kind, value in aliases if value]
        found = self._claim(keys=keys, args=[candidate])
        return found.decode() if isinstance(found, bytes) else str(found)

    def point(self, kind: str, value: str, key: str) -> None:
        """A plain alias to the latest meeting for `value` (a recurring series' online
        meeting id points to its latest occurrence), for `explain` and the transcript path."""
        self.conn.set(alias_key(kind, value), key)

    def find(self, any_id: str) -> str | None:
        """The meeting key for a meeting key, online meeting id or callRecord id."""
        if self.conn.exists(meeting_hash(any_id)):
            return any_id
        return self.alias("om", any_id) or self.alias("cr", any_id)

    # meetings ----------------------------------------------------------------------------
    def meeting(self, key: str) -> dict[str, str]:
        entry: dict[bytes, bytes] = self.conn.hgetall(meeting_hash(key))  # type: ignore[assignment]
        return _decode(entry)

    def update(self, key: str, **fields: object) -> None:
        """Set fields of the meeting (None and "" leave a field as it is)."""
        now = _now()
        values: dict[str | bytes, str] = {
            k: _field(v) for k, v in fields.items() if v is not None and v != ""
        }
        values.update(meeting_key=key, updated_at=now)
        with self.conn.pipeline() as pipe:
            pipe.hsetnx(meeting_hash(key), "created_at", now)
            pipe.hset(meeting_hash(key), mapping=values)  # type: ignore[arg-type]
            pipe.execute()

    def clear(self, key: str, *fields: str) -> None:
        self.conn.hdel(meeting_hash(key), *fields)

    def increment(self, key: str, field: str) -> int:
        return int(self.conn.hincrby(meeting_hash(key), field, 1))

    def event(self, key: str, what: str, **detail: object) -> None:
        """Add a line to the meeting's story."""
        line = json.dumps({"at": _now(), "what": what, **detail}, default=str)
        events = f"{meeting_hash(key)}:events"
        with self.conn.pipeline() as pipe:
            pipe.rpush(events, line)
            pipe.ltrim(events, -MAX_EVENTS, -1)
            pipe.execute()

    def events(self, key: str) -> list[dict[str, Any]]:
        raw: list[bytes] = self.conn.lrange(f"{meeting_hash(key)}:events", 0, -1)  # type: ignore[assignment]
        return [json.loads(line) for line in raw]

    def set_outcome(self, key: str, outcome: str, reason: str | None = None) -> bool:
        """Record the meeting's outcome; True when it changed (and the counts with it)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        now = datetime.now(UTC)
        args: list[str | float] = [outcome, now.isoformat(), now.timestamp(), key,
                                   defaults.OPS_LATEST_MEETINGS]  # fmt: skip
        changed = bool(self._outcome(keys=[meeting_hash(key), OUTCOMES_KEY, LATEST_KEY], args=args))
        if reason:
            self.update(key, outcome_reason=reason)
        if changed:
            self.event(key, f"outcome: {outcome}", reason=reason)
        return changed

    def error(self, key: str, error: str) -> None:
        self.update(key, last_error=error, last_error_at=_now())
        self.event(key, "error", error=error)

    def latest(self, count: int = defaults.OPS_LATEST_MEETINGS) -> list[str]:
        """The meeting keys whose outcome was set most recently, newest first."""
        raw: list[bytes] = self.conn.zrevrange(LATEST_KEY, 0, count - 1)  # type: ignore[assignment]
        return [k.decode() for k in raw]

    def outcome_counts(self) -> dict[str, int]:
        """Meetings by outcome; every outcome present, zero when none."""
        raw: dict[bytes, bytes] = self.conn.hgetall(OUTCOMES_KEY)  # type: ignore[assignment]
        counts = dict.fromkeys(OUTCOMES, 0)
        counts.update({k.decode(): int(v) for k, v in raw.items()})
        return counts


def _field(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, default=str)
