"""The clock's keeper of what Redis cannot rebuild (ingest/recovery.py), on a real Redis:
it copies users, sealed tokens and the watermark while the generation marker is there, and
after a wipe writes them back, re-creates the subscriptions and reconciles, in that order."""

from __future__ import annotations

import time
from typing import Any

import redis
from structlog.testing import capture_logs

from core import keys
from core.settings import Settings
from core.vault import TOKENS_PREFIX
from ingest.clock import LOCK_KEY, Clock
from ingest.recovery import Keeper
from tests.ingest.test_clock import clock_settings
from workers import registry, users

ALICE = users.EciUser(id="11111111-aaaa-4bbb-8ccc-000000000001", upn="alice@contoso.com")
BOB = users.EciUser(id="11111111-aaaa-4bbb-8ccc-000000000002", upn="bob@contoso.com")


class Recorder:
    """ensure and reconcile stand-ins that record the order and what Redis held then."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self.calls: list[str] = []

    def ensure(self) -> list[dict[str, Any]]:
        self.calls.append("ensure")
        assert users.all_users(self.conn), "users are back before subscriptions are made"
        registry.mark(self.conn)
        return [{"id": "new", "action": "created"}]

    def reconcile(self) -> dict[str, Any]:
        self.calls.append("reconcile")
        assert self.conn.get(keys.RECONCILE_WATERMARK) == b"2026-11-30T10:00:00+00:00"
        return {"found": 3, "known": 0, "enqueued": 3}


def keeper(conn: redis.Redis) -> tuple[Keeper, Recorder]:
    rec = Recorder(conn)
    return Keeper(conn, rec.ensure, rec.reconcile), rec


def set_up(conn: redis.Redis) -> None:
    registry.mark(conn)
    users.add(conn, ALICE)
    users.add(conn, BOB)
    conn.set(TOKENS_PREFIX + ALICE.id, b"sealed-alice")
    conn.set(keys.RECONCILE_WATERMARK, "2026-11-30T10:00:00+00:00")


class TestKeeper:
    def test_nothing_to_do_while_the_marker_is_there(self, redis_conn: redis.Redis) -> None:
        set_up(redis_conn)
        kept, rec = keeper(redis_conn)
        assert kept.check() is None
        assert rec.calls == []

    def test_a_wipe_is_undone_in_one_check(self, redis_conn: redis.Redis) -> None:
        set_up(redis_conn)
        kept, rec = keeper(redis_conn)
        kept.check()
        redis_conn.flushdb()
        with capture_logs() as logs:
            result = kept.check()
        assert rec.calls == ["ensure", "reconcile"]
        assert result == {"users_restored": 2, "tokens_restored": 1, "subscriptions_created": 1,
                          "found": 3, "known": 0, "enqueued": 3}  # fmt: skip
        assert {u.id for u in users.all_users(redis_conn)} == {ALICE.id, BOB.id}
        assert redis_conn.get(TOKENS_PREFIX + ALICE.id) == b"sealed-alice"
        assert redis_conn.get(TOKENS_PREFIX + BOB.id) is None
        assert [e["event"] for e in logs] == ["redis_wiped", "redis_wipe_recovered"]
        assert kept.check() is None  # marked again

    def test_a_wipe_someone_set_up_again_is_still_undone(self, redis_conn: redis.Redis) -> None:
        """`ingest subscriptions ensure` run after the wipe writes a new marker before the
        clock looks: the users and tokens are still restored, and ensure runs for them."""
        set_up(redis_conn)
        kept, rec = keeper(redis_conn)
        kept.check()
        redis_conn.flushdb()
        registry.mark(redis_conn)  # a new generation
        assert kept.check() is not None
        assert rec.calls == ["ensure", "reconcile"]
        assert {u.id for u in users.all_users(redis_conn)} == {ALICE.id, BOB.id}
        assert kept.check() is None  # the new generation is adopted

    def test_what_was_written_since_the_wipe_wins(self, redis_conn: redis.Redis) -> None:
        set_up(redis_conn)
        kept, _ = keeper(redis_conn)
        kept.check()
        redis_conn.flushdb()
        redis_conn.set(TOKENS_PREFIX + ALICE.id, b"reconnected")  # the connect flow, just now
        kept.check()
        assert redis_conn.get(TOKENS_PREFIX + ALICE.id) == b"reconnected"

    def test_a_disconnected_user_is_not_reconnected(self, redis_conn: redis.Redis) -> None:
        set_up(redis_conn)
        kept, _ = keeper(redis_conn)
        kept.check()
        redis_conn.delete(TOKENS_PREFIX + ALICE.id)  # Alice disconnected
        kept.check()
        redis_conn.flushdb()
        kept.check()
        assert redis_conn.get(TOKENS_PREFIX + ALICE.id) is None

    def test_without_a_copy_it_says_how_to_restore_users(self, redis_conn: redis.Redis) -> None:
        """A clock started after the wipe has no copy: subscriptions and reconciliation still
        run, and the log names the command that brings the users back."""
        calls: list[str] = []
        kept = Keeper(redis_conn, lambda: calls.append("ensure") or [],
                      lambda: calls.append("reconcile") or {})  # fmt: skip
        with capture_logs() as logs:
            kept.check()
        [line] = [e for e in logs if e["event"] == "eci_users_unknown"]
        assert line["log_level"] == "error" and "ingest users add" in line["hint"]
        assert calls == ["ensure", "reconcile"]


class TestInTheClock:
    def test_a_follower_keeps_a_copy_and_recovers_once_it_leads(
        self, redis_conn: redis.Redis, settings: Settings
    ) -> None:
        set_up(redis_conn)
        kept, rec = keeper(redis_conn)
        ticker = Clock(clock_settings(settings), redis_conn, {}, keeper=kept)
        redis_conn.set(LOCK_KEY, "another clock", px=60_000)
        ticker.tick(time.monotonic())
        assert not ticker.leading and rec.calls == []
        redis_conn.flushdb()  # the leader's lock goes with everything else
        ticker.tick(time.monotonic())
        assert ticker.leading and ticker.passes["recovery"] == 1
        assert rec.calls == ["ensure", "reconcile"]
        assert {u.id for u in users.all_users(redis_conn)} == {ALICE.id, BOB.id}
        ticker.tick(time.monotonic())
        assert ticker.passes["recovery"] == 1  # nothing more to do
