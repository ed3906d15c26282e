"""Counters the ops page reads: API requests per service and day, jobs finished per minute.

Each count is one pipelined INCR with an expiry: cheap enough for every Graph request and
Salesforce call. A counter never fails its caller: a Redis error loses a count, not a job.
Days are UTC days; minutes are Unix minutes (seconds // 60).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from core import defaults, keys
from core.settings import Settings

GRAPH = "graph"
SALESFORCE = "salesforce"
SERVICES = (GRAPH, SALESFORCE)


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def calls_key(service: str, now: float) -> str:
    return keys.key(keys.CALLS, service, _day(now))


def throughput_key(minute: int) -> str:
    return keys.key(keys.THROUGHPUT, str(minute))


class CallCounter:
    """Counts one service's requests in Redis; `hit` is called once per request sent."""

    def __init__(
        self,
        conn: redis.Redis,
        service: str,
        clock: Callable[[], float] = time.time,
        owns: bool = False,
    ) -> None:
        self.conn = conn
        self.service = service
        self.clock = clock
        self._owns = owns

    @classmethod
    def for_settings(cls, settings: Settings, service: str) -> CallCounter:
        """A counter on a connection of its own (opened on the first count): the clients that
        count have no Redis of their own, and a slow Redis must not hold their requests long."""
        conn = redis.Redis.from_url(
            settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        return cls(conn, service, owns=True)

    def hit(self) -> None:
        key = calls_key(self.service, self.clock())
        try:
            with self.conn.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, defaults.CALLS_TTL_SECONDS)
                pipe.execute()
        except redis.RedisError:
            pass  # a lost count is better than a failed request

    def close(self) -> None:
        if self._owns:
            self.conn.close()


def calls_today(conn: redis.Redis, now: float | None = None) -> dict[str, int]:
    """Requests sent today (UTC) per service; zero for a service that sent none."""
    stamp = time.time() if now is None else now
    values = conn.mget([calls_key(s, stamp) for s in SERVICES])
    return {s: int(v or 0) for s, v in zip(SERVICES, values, strict=True)}


def job_done(conn: redis.Redis, ok: bool, now: float | None = None) -> None:
    """Count one job run that ended (a failed attempt counts as `failed`, retried or not)."""
    key = throughput_key(int((time.time() if now is None else now) // 60))
    try:
        with conn.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, "ok" if ok else "failed", 1)
            pipe.expire(key, defaults.THROUGHPUT_TTL_SECONDS)
            pipe.execute()
    except redis.RedisError:
        pass


@dataclass(frozen=True)
class Minute:
    """Jobs that ended in one minute."""

    minute: int
    ok: int
    failed: int


def throughput(conn: redis.Redis, minutes: int = 60, now: float | None = None) -> list[Minute]:
    """The last `minutes` minutes, oldest first, the current one last (one pipelined read)."""
    last = int((time.time() if now is None else now) // 60)
    span = range(last - minutes + 1, last + 1)
    with conn.pipeline(transaction=False) as pipe:
        for minute in span:
            pipe.hmget(throughput_key(minute), ["ok", "failed"])
        rows = pipe.execute()
    return [
        Minute(minute, int(ok or 0), int(failed or 0))
        for minute, (ok, failed) in zip(span, rows, strict=True)
    ]
