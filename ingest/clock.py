"""`ingest clock` (Procfile `clock`): renews subscriptions, reconciles, records health; one leader.

Each tick the leader first looks for a wiped Redis (ingest/recovery.py) and, finding one,
puts the product back in that same tick.

Every clock process competes for one Redis lock (SET NX PX); the holder extends it while it
leads (a Lua compare-and-extend, so a leader that lost it cannot extend another's), and the
others wait and take over once it lapses. Only the leader does periodic work, so two clocks
never double-renew or double-reconcile. SIGTERM stops the loop and releases the lock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import redis

from core import defaults, keys, logs, times
from core.exceptions import NotFound
from core.settings import Settings
from ingest import health
from ingest.reconcile import CallRecords, Reconciler, TranscriptDelta
from ingest.recovery import Keeper
from workers import registry
from workers.graph.client import GraphClient
from workers.registry import KIND_CALL_RECORDS, KIND_TRANSCRIPTS
from workers.subscriptions import GraphSubscriptions, Manager

LOCK_KEY = keys.CLOCK_LEADER
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
LIFETIMES = {KIND_CALL_RECORDS: defaults.CALL_RECORDS_MAX_MINUTES,
             KIND_TRANSCRIPTS: defaults.TRANSCRIPTS_MAX_MINUTES}  # fmt: skip

log = logs.get_logger("ingest.clock")


class LeaderLock:
    """The clock's leader lock: acquire, extend while leading, release on the way out."""

    def __init__(self, conn: redis.Redis, ttl_s: float, key: str = LOCK_KEY) -> None:
        self.conn = conn
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = secrets.token_hex(16)
        self._extend = conn.register_script(_EXTEND)
        self._release = conn.register_script(_RELEASE)

    def hold(self) -> bool:
        """Take the lock when free, or extend it when ours; False when another leads."""
        if self._extend(keys=[self.key], args=[self.token, self.ttl_ms]):
            return True
        return bool(self.conn.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])


class Renewer:
    """Renews each subscription past half its lifetime; re-creates what Graph no longer lists."""

    def __init__(self, conn: redis.Redis, manager: Any, clock: Callable[[], datetime]) -> None:
        self.conn = conn
        self.manager = manager  # ingest.subscriptions.Manager
        self.clock = clock

    def run_pass(self) -> dict[str, int]:

        counts = {"renewed": 0, "created": 0, "failed": 0, "kept": 0}
        now = self.clock()
        subs = registry.load_all(self.conn)
        before = {s.id for s in subs}
        due = [s for s in subs if self._due(s, now)]
        try:
            listed = {str(s["id"]) for s in self.manager.api.list()}
        except Exception as exc:  # Graph unreachable: each due subscription missed a renewal
            for sub in due:
                health.renewal_failed(self.conn, sub.id, _reason(exc))
            raise
        counts["kept"] = len(subs) - len(due)
        for sub in due:
            if sub.id not in listed:
                continue  # gone from Graph: ensure() below forgets it and creates a new one
            try:
                row = self.manager.renew_one(sub.id)
            except NotFound:
                row = {"action": "recreated"}
            except Exception as exc:  # one subscription's failure is noted
                failures = health.renewal_failed(self.conn, sub.id, _reason(exc))
                counts["failed"] += 1
                log.error("subscription_renewal_failed", subscription_id=sub.id,
                          resource=sub.resource, error=_reason(exc), failures=failures)  # fmt: skip
                continue
            if row.get("action") == "renewed":
                health.renewed(self.conn, sub.id)
                counts["renewed"] += 1
        self.manager.ensure()
        held = {s.id for s in registry.load_all(self.conn)}
        for sub_id in held - before:  # re-created here or by renew_one on a 404
            health.renewed(self.conn, sub_id)
            counts["created"] += 1
        health.forget_others(self.conn, held)
        return counts

    @staticmethod
    def _due(sub: registry.Subscription, now: datetime) -> bool:
        """Past half its lifetime (or of unknown expiry): renew it now."""
        left = _until(sub.expires_at, now)
        return left is None or left <= timedelta(minutes=LIFETIMES.get(sub.kind, 60)) / 2


def _until(expires_at: str, now: datetime) -> timedelta | None:
    when = times.parse(expires_at)
    return None if when is None else when - now


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class Clock:
    """The loop: every tick hold the lock; when leading, run what is due."""

    def __init__(
        self,
        settings: Settings,
        conn: redis.Redis,
        tasks: dict[str, tuple[float, Callable[[], dict[str, Any]]]],
        stop: threading.Event | None = None,
        keeper: Keeper | None = None,
    ) -> None:
        self.settings = settings
        # Checked first at every leader tick; a follower only keeps its copy fresh, so that
        # whichever clock leads after a wipe can restore what Redis lost.
        self.keeper = keeper
        self.conn = conn
        self.tasks = tasks  # name -> (interval in seconds, pass)
        self.stop = stop or threading.Event()
        self.lock = LeaderLock(conn, settings.clock_lock_ttl_seconds)
        self.leading = False
        self.passes: dict[str, int] = dict.fromkeys(tasks, 0)
        self._due: dict[str, float] = dict.fromkeys(tasks, 0.0)

    def tick(self, monotonic: float) -> None:
        """One wake-up: keep or take the lock, then run each due task (leader only)."""
        try:
            leading = self.lock.hold()
        except redis.RedisError as exc:
            log.error("clock_redis_unavailable", error=type(exc).__name__)
            leading = False
        if leading != self.leading:
            log.info("clock_leader" if leading else "clock_follower", pid=os.getpid())
            self.leading = leading
            self._due = dict.fromkeys(self.tasks, 0.0)  # a new leader runs everything first
        if not leading:
            if self.keeper is not None:
                with contextlib.suppress(redis.RedisError):
                    self.keeper.remember()
            return
        if self.keeper is not None:
            self._run("recovery", self.keeper.check)
        for name, (interval, work) in self.tasks.items():
            if self.stop.is_set() or not self.leading or monotonic < self._due[name]:
                continue
            self._due[name] = monotonic + interval
            self._run(name, work)
            if not self.lock.hold():  # a slow pass may have outlived the lock: stop leading
                self.leading = False
                log.warning("clock_lock_lost", task=name)
                return

    def _run(self, name: str, work: Callable[[], dict[str, Any] | None]) -> None:
        try:
            result = work()
        except Exception as exc:  # the clock outlives one failed pass
            log.error("clock_pass_failed", task=name, error=_reason(exc))
            if name == "reconcile":
                with contextlib.suppress(redis.RedisError):
                    health.reconciled(self.conn, last_error=_reason(exc))
            return
        if result is None:  # the keeper found nothing to do
            return
        self.passes[name] = self.passes.get(name, 0) + 1
        log.info("clock_pass", task=name, **result)
        try:
            lines = health.warnings(self.conn)
        except redis.RedisError as exc:
            log.error("clock_redis_unavailable", error=type(exc).__name__)
            return
        for line in lines:
            log.warning("subscription_health_warning", warning=line)

    def keep_lock(self) -> None:
        """Extend the lock every third of its lifetime while leading, even in a long pass."""
        while not self.stop.wait(self.lock.ttl_ms / 3000):
            if not self.leading:
                continue
            try:
                held = self.lock.hold()
            except redis.RedisError:
                held = False
            if not held:
                self.leading = False  # the pass in flight ends; no new one starts
                log.warning("clock_lock_lost")

    def run(self) -> None:
        keeper = threading.Thread(target=self.keep_lock, name="clock-lock", daemon=True)
        keeper.start()
        try:
            while not self.stop.is_set():
                self.tick(time.monotonic())
                self.stop.wait(self.settings.clock_tick_seconds)
        finally:
            self.stop.set()
            keeper.join(5)
            with contextlib.suppress(redis.RedisError):  # it lapses on its own
                self.lock.release()
            log.info("clock_stopped")


def build(settings: Settings, conn: redis.Redis, graph_client: Any,
          now: Callable[[], datetime] = lambda: datetime.now(UTC),
          stop: threading.Event | None = None) -> Clock:  # fmt: skip
    """A Clock with the renewal and reconciliation passes over one Graph client."""

    manager = Manager(settings, conn, GraphSubscriptions(settings, graph_client), clock=now)
    renewer = Renewer(conn, manager, now)
    reconciler = Reconciler(settings, conn, CallRecords(graph_client), clock=now,
                            transcripts=TranscriptDelta(graph_client, conn))  # fmt: skip

    def reconcile() -> dict[str, Any]:
        counts = reconciler.run_pass()
        return {"found": counts.found, "known": counts.known, "enqueued": counts.enqueued}

    tasks: dict[str, tuple[float, Callable[[], dict[str, Any]]]] = {
        "renew": (settings.renew_interval_seconds, renewer.run_pass),
        "reconcile": (settings.reconcile_interval_seconds, reconcile),
    }
    keeper = Keeper(conn, manager.ensure, reconcile)
    return Clock(settings, conn, tasks, stop, keeper=keeper)


def run(args: argparse.Namespace, settings: Settings) -> int:

    settings.require_graph()
    settings.require_public_url()
    logs.configure()
    conn = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
    client = GraphClient(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        log.info("clock_starting", renew_every_s=settings.renew_interval_seconds,
                 reconcile_every_s=settings.reconcile_interval_seconds)  # fmt: skip
        build(settings, conn, client, stop=stop).run()
    finally:
        client.close()
        conn.close()
    return 0
