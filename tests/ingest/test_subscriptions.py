"""`ingest subscriptions`: Graph and the receiver's registry brought in line, idempotently."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from core.exceptions import Conflict, NotFound
from core.settings import Settings
from workers import registry, users
from workers.subscriptions import Manager

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PUBLIC = "https://ingest.example.com"


class FakeSubscriptions:
    """Graph's /subscriptions: clientState only in the create answer, 409 for a duplicate."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.creates = 0

    def list(self) -> list[dict[str, Any]]:
        return [{**s, "clientState": None} for s in self.items.values()]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        for s in self.items.values():
            if s["resource"].lower() == body["resource"].lower():
                raise Conflict(s["id"])
        self.creates += 1
        sub = {**body, "id": str(uuid.uuid4()),
               "expirationDateTime": body["expirationDateTime"].isoformat()}  # fmt: skip
        self.items[sub["id"]] = sub
        return sub

    def update(self, subscription_id: str, expires: datetime) -> dict[str, Any]:
        if subscription_id not in self.items:
            raise NotFound(subscription_id)
        self.items[subscription_id]["expirationDateTime"] = expires.isoformat()
        return self.items[subscription_id]

    def delete(self, subscription_id: str) -> None:
        self.items.pop(subscription_id, None)


@pytest.fixture
def api() -> FakeSubscriptions:
    return FakeSubscriptions()


def manager(settings: Settings, conn: redis.Redis, api: FakeSubscriptions, **over: Any) -> Manager:
    s = Settings(**{**settings.__dict__, "public_url": PUBLIC, **over})
    return Manager(s, conn, api, clock=lambda: NOW)


def add_alice(conn: redis.Redis) -> None:
    users.add(conn, users.EciUser(id="aaaaaaaa-0000-0000-0000-000000000001",
                                  upn="alice@contoso.com"))  # fmt: skip


class TestEnsure:
    """ensure creates callRecords and per-user transcript subscriptions, and is idempotent."""

    def test_creates_and_registers(
        self, settings: Settings, redis_conn: redis.Redis, api: FakeSubscriptions
    ) -> None:
        add_alice(redis_conn)
        rows = manager(settings, redis_conn, api).ensure()
        assert sorted(r["resource"] for r in rows) == [
            "communications/callRecords",
            "users/aaaaaaaa-0000-0000-0000-000000000001/onlineMeetings/getAllTranscripts",
        ]
        held = {s.id: s for s in registry.load_all(redis_conn)}
        assert set(held) == set(api.items)
        for sub_id, sub in held.items():
            remote = api.items[sub_id]
            assert sub.client_state == remote["clientState"]
            assert 16 <= len(sub.client_state) <= 128
            assert remote["notificationUrl"] == PUBLIC + "/graph/notifications"
            assert remote["lifecycleNotificationUrl"] == PUBLIC + "/graph/lifecycle"
            limit = 4230 if sub.kind == "callRecords" else 4320
            expires = datetime.fromisoformat(remote["expirationDateTime"])
            assert NOW + timedelta(minutes=limit - 60) < expires <= NOW + timedelta(minutes=limit)
        assert len({s.client_state for s in held.values()}) == 2
        assert next(s for s in held.values() if s.kind == "callRecords").change_type == (
            "created,updated")  # fmt: skip

    def test_second_run_keeps_everything(
        self, settings: Settings, redis_conn: redis.Redis, api: FakeSubscriptions
    ) -> None:
        add_alice(redis_conn)
        manager(settings, redis_conn, api).ensure()
        before = {s.id: s.client_state for s in registry.load_all(redis_conn)}
        rows = manager(settings, redis_conn, api).ensure()
        assert {r["action"] for r in rows} == {"kept"}
        assert {s.id: s.client_state for s in registry.load_all(redis_conn)} == before
        assert api.creates == 2

    def test_lost_registry_recreates_after_conflict(
        self, settings: Settings, redis_conn: redis.Redis, api: FakeSubscriptions
    ) -> None:
        manager(settings, redis_conn, api).ensure()
        for sub in registry.load_all(redis_conn):
            registry.remove(redis_conn, sub.id)
        api.items = {k: {**v, "notificationUrl": "https://elsewhere"} for k, v in api.items.items()}
        rows = manager(settings, redis_conn, api).ensure()  # 409 on create: replaced
        assert [r["action"] for r in rows] == ["created"]
        held = registry.load_all(redis_conn)
        assert [s.id for s in held] == list(api.items)
        assert held[0].client_state == api.items[held[0].id]["clientState"]

    def test_tenant_wide(
        self, settings: Settings, redis_conn: redis.Redis, api: FakeSubscriptions
    ) -> None:
        add_alice(redis_conn)
        manager(settings, redis_conn, api, tenant_wide_transcripts=True).ensure()
        assert sorted(s["resource"] for s in api.items.values()) == [
            "communications/callRecords",
            "communications/onlineMeetings/getAllTranscripts",
        ]

    def test_removed_user_loses_subscription(
        self, settings: Settings, redis_conn: redis.Redis, api: FakeSubscriptions
    ) -> None:
        add_alice(redis_conn)
        manager(settings, redis_conn, api).ensure()
        users.remove(redis_conn, "alice@contoso.com")
        rows = manager(settings, redis_conn, api).ensure()
        assert "deleted" in {r["action"] for r in rows}
        assert [s["resource"] for s in api.items.values()] == ["communications/callRecords"]
        assert len(registry.load_all(redis_conn)) == 1


class TestListAndDelete:
    """list never shows a clientState; delete empties Graph and the registry."""

    def test_list_hides_client_state(
        self, settings: Settings, redis_conn: redis.Redis, api: FakeSubscriptions
    ) -> None:
        add_alice(redis_conn)
        m = manager(settings, redis_conn, api)
        m.ensure()
        text = json.dumps(m.listing())
        for sub in registry.load_all(redis_conn):
            assert sub.client_state not in text
        assert all(row["in_graph"] for row in m.listing())

    def test_delete(
        self, settings: Settings, redis_conn: redis.Redis, api: FakeSubscriptions
    ) -> None:
        add_alice(redis_conn)
        m = manager(settings, redis_conn, api)
        m.ensure()
        rows = m.delete_all()
        assert len(rows) == 2
        assert api.items == {}
        assert registry.load_all(redis_conn) == []

    def test_renew_recreates_lost(
        self, settings: Settings, redis_conn: redis.Redis, api: FakeSubscriptions
    ) -> None:
        m = manager(settings, redis_conn, api)
        m.ensure()
        api.items.clear()
        rows = m.renew()
        assert [r["action"] for r in rows] == ["forgotten", "created"]
        assert [s.id for s in registry.load_all(redis_conn)] == list(api.items)
