"""Subscription and reconciliation health in Redis: the clock writes it; status and /metrics read.

Keys (prefix `ingest:health`):
- `subscription:{id}`: a hash per subscription: `last_renewal`, `last_error`, `last_error_at`,
  `failures` (renewals failed in a row);
- `reconcile`: the last reconciliation pass: `at`, `watermark`, `found`, `known`, `enqueued`,
  `missed` (callRecords no notification announced), `last_error`.
The last notification per subscription is the ledger's (workers/ledger.py, `subscription_seen`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import defaults, keys, times
from workers import registry

PREFIX = keys.HEALTH
RECONCILE_KEY = keys.HEALTH_RECONCILE
SEEN_KEY = keys.SUBSCRIPTION_SEEN  # workers/ledger.py writes it
FAILURES_WARNING = 2  # renewals failed in a row before a subscription is unhealthy


def subscription_key(subscription_id: str) -> str:
    return f"{PREFIX}:subscription:{subscription_id}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _text(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in raw.items()
    }


def renewed(conn: redis.Redis, subscription_id: str) -> None:
    conn.hset(subscription_key(subscription_id),
              mapping={"last_renewal": _now(), "failures": "0"})  # fmt: skip


def renewal_failed(conn: redis.Redis, subscription_id: str, error: str) -> int:
    """Note a failed renewal; returns how many failed in a row."""
    key = subscription_key(subscription_id)
    with conn.pipeline() as pipe:
        pipe.hset(key, mapping={"last_error": error[:500], "last_error_at": _now()})
        pipe.hincrby(key, "failures", 1)
        return int(pipe.execute()[-1])


def forget_others(conn: redis.Redis, keep: set[str]) -> None:
    """Drop the health of subscriptions no longer held (re-created ones get new ids)."""
    for key in conn.scan_iter(match=subscription_key("*")):
        sub_id = (key.decode() if isinstance(key, bytes) else str(key)).rsplit(":", 1)[-1]
        if sub_id not in keep:
            conn.delete(key)


def reconciled(conn: redis.Redis, **fields: object) -> None:
    conn.hset(RECONCILE_KEY, mapping={"at": _now(), **{k: str(v) for k, v in fields.items()}})


def subscriptions(conn: redis.Redis, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each held subscription's health, with the reasons it is unhealthy (empty: healthy)."""
    now = now or datetime.now(UTC)
    seen = _text(conn.hgetall(SEEN_KEY))
    out = []
    for sub in registry.load_all(conn):
        data = _text(conn.hgetall(subscription_key(sub.id)))
        left = times.seconds_until(sub.expires_at, now)
        failures = int(data.get("failures") or 0)
        warnings = []
        if left is not None and left < defaults.HEALTH_EXPIRY_WARNING_SECONDS:
            warnings.append("expires within 1 h")
        if failures >= FAILURES_WARNING:
            warnings.append(f"renewal failed {failures} times in a row")
        out.append({
            "id": sub.id, "resource": sub.resource, "kind": sub.kind,
            "expires_at": sub.expires_at, "expires_in_seconds": left,
            "last_notification": seen.get(sub.id) or None,
            "last_renewal": data.get("last_renewal") or None,
            "last_error": data.get("last_error") or None,
            "renewal_failures": failures, "warnings": warnings,
        })  # fmt: skip
    return out


def reconciliation(conn: redis.Redis) -> dict[str, Any]:
    """The last reconciliation pass, with a warning when it found unannounced meetings."""
    data: dict[str, Any] = _text(conn.hgetall(RECONCILE_KEY))
    for name in ("found", "known", "enqueued", "missed"):
        if name in data:
            data[name] = int(data[name])
    data["warnings"] = (
        [f"{data['missed']} meetings no notification announced"] if data.get("missed") else []
    )
    return data


def warnings(conn: redis.Redis, now: datetime | None = None) -> list[str]:
    """Every health warning, one line each."""
    lines = [f"subscription {s['id']} ({s['kind']}): {w}"
             for s in subscriptions(conn, now) for w in s["warnings"]]  # fmt: skip
    return lines + [f"reconciliation: {w}" for w in reconciliation(conn)["warnings"]]


def _stamp(value: str | None) -> float | None:
    if not value:
        return None
    when = times.parse(value)
    return None if when is None else when.timestamp()


class HealthCollector(Collector):
    """Gauges computed from Redis at scrape time (registered on the receiver's registry)."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["subscription_id", "kind"]

        def gauge(name: str, doc: str, with_labels: bool = True) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels if with_labels else None)

        expiry = gauge("ingest_subscription_expires_in_seconds", "Seconds until it expires")
        seen = gauge("ingest_subscription_last_notification_timestamp_seconds",
                     "When its last notification was handled")  # fmt: skip
        renewal = gauge("ingest_subscription_last_renewal_timestamp_seconds",
                        "When it was last renewed")  # fmt: skip
        failures = gauge("ingest_subscription_renewal_failures", "Renewals failed in a row")
        unhealthy = gauge("ingest_subscription_unhealthy", "1 when it has a health warning")
        missed = gauge("ingest_reconcile_missed",
                       "Meetings the last reconciliation found unannounced", False)  # fmt: skip
        try:
            subs = subscriptions(self.conn)
            rec = reconciliation(self.conn)
        except redis.RedisError:
            return  # /metrics must answer while Redis is down; /readyz reports it
        for s in subs:
            values = [s["id"], s["kind"]]
            if s["expires_in_seconds"] is not None:
                expiry.add_metric(values, s["expires_in_seconds"])
            for family, raw in ((seen, s["last_notification"]), (renewal, s["last_renewal"])):
                stamp = _stamp(raw)
                if stamp is not None:
                    family.add_metric(values, stamp)
            failures.add_metric(values, s["renewal_failures"])
            unhealthy.add_metric(values, 1 if s["warnings"] else 0)
        missed.add_metric([], int(rec.get("missed") or 0))
        yield from (expiry, seen, renewal, failures, unhealthy, missed)
