"""Subscription health in `ingest status` (text and JSON) and on the receiver's /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from prometheus_client import CollectorRegistry, generate_latest

from core.settings import Settings
from ingest import health, status
from ingest.app import METRICS, create_app
from workers import registry
from workers.ledger import Ledger
from workers.registry import Subscription


def hold(conn: redis.Redis, sub_id: str, expires_in: timedelta) -> None:
    expires = (datetime.now(UTC) + expires_in).isoformat()
    registry.save(conn, Subscription(id=sub_id, resource="communications/callRecords",
                                     kind="callRecords", client_state="secret-state",
                                     expires_at=expires))  # fmt: skip


class TestStatusHealth:
    """status shows each subscription's last notification, renewal, error and warnings."""

    def test_json_keeps_keys_and_adds_health(
        self, settings: Settings, redis_conn: redis.Redis
    ) -> None:
        hold(redis_conn, "sub-1", timedelta(minutes=30))
        Ledger(redis_conn).record_notification({"kind": "callRecords", "subscriptionId": "sub-1",
                                                "ids": {"callRecordId": "cr-1"}})  # fmt: skip
        health.renewal_failed(redis_conn, "sub-1", "UpstreamTransient: 503")
        doc = status.collect(settings, redis_conn)
        assert {"queues", "failed", "subscriptions", "meetings"} <= set(doc)
        sub = doc["subscriptions"][0]
        assert sub["expires_in_seconds"] is not None and sub["last_notification"]
        assert sub["last_error"] == "UpstreamTransient: 503" and sub["last_renewal"] is None
        assert doc["health_warnings"] == ["subscription sub-1 (callRecords): expires within 1 h"]
        text = status.render(doc)
        assert "WARNING: subscription sub-1" in text and "last error: UpstreamTransient" in text
        assert "secret-state" not in text + str(doc)

    def test_reconciliation_notifications_do_not_count(self, redis_conn: redis.Redis) -> None:
        hold(redis_conn, "sub-1", timedelta(hours=20))
        Ledger(redis_conn).record_notification({"kind": "callRecords", "subscriptionId": "sub-1",
                                                "source": "reconciliation",
                                                "ids": {"callRecordId": "cr-1"}})  # fmt: skip
        entry = health.subscriptions(redis_conn)[0]
        assert entry["last_notification"] is None and entry["warnings"] == []


class TestMetrics:
    """The receiver's /metrics carries the health gauges, read from Redis at scrape time."""

    def test_gauges(self, redis_conn: redis.Redis) -> None:
        hold(redis_conn, "sub-1", timedelta(minutes=20))
        health.renewed(redis_conn, "sub-1")
        reg = CollectorRegistry()
        reg.register(health.HealthCollector(redis_conn))
        text = generate_latest(reg).decode()
        assert (
            'ingest_subscription_unhealthy{kind="callRecords",subscription_id="sub-1"} 1.0' in text
        )
        assert "ingest_subscription_last_renewal_timestamp_seconds{" in text
        assert "ingest_reconcile_missed 0.0" in text

    def test_registered_on_receiver(self, settings: Settings, redis_conn: redis.Redis) -> None:
        hold(redis_conn, "sub-2", timedelta(hours=30))
        app = create_app(settings)
        metrics = app[METRICS]
        try:
            text = generate_latest(metrics.registry).decode()
            assert (
                'ingest_subscription_expires_in_seconds{kind="callRecords",subscription_id="sub-2"}'
                in text
            )
            assert (
                'ingest_subscription_unhealthy{kind="callRecords",subscription_id="sub-2"} 0.0'
                in text
            )
        finally:
            collector = metrics._health
            assert isinstance(collector, health.HealthCollector)
            collector.conn.close()
