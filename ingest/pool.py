"""The receiver's Redis client: a bounded pool of connections that pack commands in C.

- Bounded, and a request waits for a connection: redis-py's default asyncio pool refuses
  the 101st concurrent command at once (MaxConnectionsError: a 503 while Redis was fine),
  and an unbounded one would open a connection per request in a burst. The enqueue shares
  one round trip among the requests that arrive together (ingest/enqueue.py), so a few
  connections serve it.
- redis-py packs an asyncio command's arguments in Python: 3.7 us per item of the enqueue
  script, 7 % of the receiver's time on 50-item batches (measured with py-spy). Its sync
  client packs with hiredis when hiredis is installed (a dependency here); these
  connections use that same packer, which writes the same bytes (0.8 us per item).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

from core import defaults

_PACKER = HiredisRespSerializer() if HIREDIS_AVAILABLE else None


class _HiredisPacking:
    """Mixed into a connection class: commands packed by hiredis."""

    def pack_command(self, *args: Any) -> list[bytes]:
        assert _PACKER is not None
        packed: list[bytes] = _PACKER.pack(*args)
        return packed


def _with_hiredis(base: type[AbstractConnection]) -> type[AbstractConnection]:
    return type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})


def client(redis_url: str) -> aioredis.Redis:
    """A client for the receiver's requests; `aclose()` closes its pool."""
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, max_connections=defaults.RECEIVER_REDIS_CONNECTIONS,
        timeout=defaults.RECEIVER_REDIS_WAIT_SECONDS, socket_timeout=2.0,
        socket_connect_timeout=1.0, health_check_interval=30,
    )  # fmt: skip
    if _PACKER is not None:  # the URL chose the class (TCP, TLS or a Unix socket)
        pool.connection_class = _with_hiredis(pool.connection_class)
    return aioredis.Redis.from_pool(pool)
