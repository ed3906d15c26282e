"""`ingest clock`: one leader at a time, renewal past half-life, re-creation, health."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from core.exceptions import NotFound
from core.settings import Settings
from ingest import health
from ingest.clock import LOCK_KEY, Clock, LeaderLock, Renewer
from tests.ingest.test_subscriptions import PUBLIC, FakeSubscriptions
from workers import registry
from workers.subscriptions import Manager

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Now:
    """A settable clock for the Manager and the Renewer."""

    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        return self.at


def clock_settings(settings: Settings, **over: Any) -> Settings:
    base = {"public_url": PUBLIC, "clock_tick_seconds": 0.05, "clock_lock_ttl_seconds": 0.3}
    return Settings(**{**settings.__dict__, **base, **over})


class TestLeaderLock:
    """Two clocks: one holds the lock; the other takes over only once it lapses or is released."""

    def test_one_leader_then_takeover(self, redis_conn: redis.Redis) -> None:
        a, b = LeaderLock(redis_conn, 0.3), LeaderLock(redis_conn, 0.3)
        assert a.hold() is True
        assert b.hold() is False
        assert a.hold() is True  # extending its own lock
        deadline = time.monotonic() + 5
        while not b.hold():  # a stops extending (it died): b takes over after the expiry
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert a.hold() is False
        assert redis_conn.get(LOCK_KEY) == b.token.encode()

    def test_release_only_own(self, redis_conn: redis.Redis) -> None:
        a, b = LeaderLock(redis_conn, 30), LeaderLock(redis_conn, 30)
        assert a.hold()
        b.release()  # not b's: nothing happens
        assert redis_conn.get(LOCK_KEY) == a.token.encode()
        a.release()
        assert b.hold()


class TestTwoClocks:
    """Two clock loops on one Redis: only the leader runs passes; the other takes over."""

    def test_only_leader_runs(self, settings: Settings, redis_conn: redis.Redis) -> None:
        s = clock_settings(settings)
        runs: list[str] = []

        def task(name: str) -> Any:
            return lambda: runs.append(name) or {}

        first = Clock(s, redis_conn, {"renew": (0.05, task("a"))})
        second = Clock(s, redis_conn, {"renew": (0.05, task("b"))})
        thread = threading.Thread(target=first.run)
        thread.start()
        try:
            deadline = time.monotonic() + 5
            while "a" not in runs:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            for _ in range(5):
                second.tick(time.monotonic())
                time.sleep(0.05)
            assert "b" not in runs
            assert second.leading is False
        finally:
            first.stop.set()
            thread.join(5)
        assert not thread.is_alive()  # stopped cleanly, releasing the lock
        second.tick(time.monotonic())
        assert second.leading is True
        assert "b" in runs

    def test_failed_pass_is_survived(self, settings: Settings, redis_conn: redis.Redis) -> None:
        def boom() -> dict[str, Any]:
            raise RuntimeError("graph down")

        clock = Clock(clock_settings(settings), redis_conn, {"reconcile": (60, boom)})
        clock.tick(time.monotonic())
        assert clock.leading and clock.passes["reconcile"] == 0
        assert "graph down" in health.reconciliation(redis_conn)["last_error"]


@pytest.fixture
def now() -> Now:
    return Now()


def renewer(settings: Settings, conn: redis.Redis, api: FakeSubscriptions, now: Now) -> Renewer:
    return Renewer(conn, Manager(clock_settings(settings), conn, api, clock=now), now)


class TestRenewer:
    """Renews subscriptions past half their lifetime, re-creates ones Graph lost, notes health."""

    def test_renews_only_past_half_life(
        self, settings: Settings, redis_conn: redis.Redis, now: Now
    ) -> None:
        api = FakeSubscriptions()
        work = renewer(settings, redis_conn, api, now)
        assert work.run_pass()["created"] == 1  # callRecords (no ECI users)
        sub = registry.load_all(redis_conn)[0]
        assert work.run_pass()["kept"] == 1
        now.at = START + timedelta(minutes=2200)  # past half of 4230 minutes
        assert work.run_pass()["renewed"] == 1
        fresh = registry.load_all(redis_conn)[0]
        assert fresh.id == sub.id
        expires = datetime.fromisoformat(fresh.expires_at)
        assert expires > datetime.fromisoformat(sub.expires_at)
        assert expires <= now.at + timedelta(minutes=4230)  # never past the maximum
        assert health.subscriptions(redis_conn)[0]["last_renewal"]

    def test_recreates_deleted_in_graph(
        self, settings: Settings, redis_conn: redis.Redis, now: Now
    ) -> None:
        api = FakeSubscriptions()
        work = renewer(settings, redis_conn, api, now)
        work.run_pass()
        old = registry.load_all(redis_conn)[0]
        api.items.clear()  # deleted on the Graph side
        assert work.run_pass()["created"] == 1
        fresh = registry.load_all(redis_conn)[0]
        assert fresh.id != old.id and fresh.id in api.items

    def test_recreates_on_404(self, settings: Settings, redis_conn: redis.Redis, now: Now) -> None:
        api = FakeSubscriptions()
        work = renewer(settings, redis_conn, api, now)
        work.run_pass()
        old = registry.load_all(redis_conn)[0]

        def gone(subscription_id: str, expires: datetime) -> dict[str, Any]:
            api.items.pop(subscription_id)  # Graph dropped it after listing it
            raise NotFound(subscription_id)

        api.update = gone  # type: ignore[method-assign]
        now.at = START + timedelta(minutes=3000)
        assert work.run_pass()["created"] == 1
        fresh = registry.load_all(redis_conn)[0]
        assert fresh.id != old.id and fresh.id in api.items
        assert health.subscriptions(redis_conn)[0]["last_renewal"]

    def test_failures_in_a_row_warn(
        self, settings: Settings, redis_conn: redis.Redis, now: Now
    ) -> None:
        api = FakeSubscriptions()
        work = renewer(settings, redis_conn, api, now)
        work.run_pass()

        def broken(subscription_id: str, expires: datetime) -> dict[str, Any]:
            raise RuntimeError("503 from Graph")

        api.update = broken  # type: ignore[method-assign]
        now.at = START + timedelta(minutes=4230 - 15 - 30)  # 30 minutes left
        assert work.run_pass()["failed"] == 1
        assert work.run_pass()["failed"] == 1
        entry = health.subscriptions(redis_conn, now.at)[0]
        assert entry["renewal_failures"] == 2
        assert "503 from Graph" in entry["last_error"]
        assert any("expires within 1 h" in w for w in entry["warnings"])
        assert any("failed 2 times" in w for w in health.warnings(redis_conn, now.at))

    def test_graph_down_counts_for_due_ones(
        self, settings: Settings, redis_conn: redis.Redis, now: Now
    ) -> None:
        api = FakeSubscriptions()
        work = renewer(settings, redis_conn, api, now)
        work.run_pass()

        def down() -> list[dict[str, Any]]:
            raise RuntimeError("connection refused")

        api.list = down  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            work.run_pass()  # not due yet: nothing counted
        assert health.subscriptions(redis_conn)[0]["renewal_failures"] == 0
        now.at = START + timedelta(minutes=3000)
        for _ in range(2):
            with pytest.raises(RuntimeError):
                work.run_pass()
        assert health.subscriptions(redis_conn, now.at)[0]["renewal_failures"] == 2


class TestSettings:
    """The clock's intervals are validated: the lock must outlive three ticks."""

    def test_lock_shorter_than_ticks_is_refused(self) -> None:
        from core.exceptions import ConfigurationError

        env = {"INGEST_CLOCK_TICK_SECONDS": "10", "INGEST_CLOCK_LOCK_TTL_SECONDS": "20"}
        with pytest.raises(ConfigurationError, match="INGEST_CLOCK_LOCK_TTL_SECONDS"):
            Settings.from_env(env)
        s = Settings.from_env({"INGEST_RENEW_INTERVAL_SECONDS": "120"})
        assert s.renew_interval_seconds == 120.0
        with pytest.raises(ConfigurationError, match="INGEST_RECONCILE_OVERLAP_SECONDS"):
            Settings.from_env({"INGEST_RECONCILE_OVERLAP_SECONDS": str(31 * 86400)})
