"""The receiver's Redis client packs commands with hiredis, byte for byte as redis-py does,
keeps the connection class its URL asks for, and is bounded."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

from core import defaults
from ingest import pool

ARGS: list[tuple[Any, ...]] = [
    ("SET", "k", "café ☕"),
    ("SET", b"k", b"\x00\xff\r\n"),
    ("EVALSHA", "a" * 40, 0, 21600, 1.5, b"data" * 1000, "callRecords s"),
    ("SCRIPT LOAD", "return 1"),  # a command name of two words, split as redis-py does
]


class TestPacking:
    """The hiredis packer writes what redis-py's own would, and Redis reads it."""

    @pytest.mark.parametrize("args", ARGS)
    def test_same_bytes_as_redis_py(self, args: tuple[Any, ...]) -> None:
        ours = pool.client("redis://127.0.0.1:1/0").connection_pool.make_connection()
        theirs = Connection()
        assert type(ours).__name__ == "HiredisConnection"
        assert b"".join(ours.pack_command(*args)) == b"".join(theirs.pack_command(*args))

    async def test_round_trip(self, redis_url: str, redis_conn: redis.Redis) -> None:
        conn = pool.client(redis_url)
        try:
            await conn.set("k", "café ☕")
            await conn.hset("h", mapping={"a": b"\x00\xff", "n": 7})
            sha = await conn.script_load("return ARGV[1] .. ARGV[2]")
            assert await conn.evalsha(sha, 0, b"x\r\n", 12) == b"x\r\n12"
        finally:
            await conn.aclose()
        assert redis_conn.get("k") == "café ☕".encode()
        assert redis_conn.hgetall("h") == {b"a": b"\x00\xff", b"n": b"7"}


class TestPool:
    """The URL chooses the connection class; the pool is bounded and waits."""

    @pytest.mark.parametrize(
        ("url", "base"),
        [
            ("redis://127.0.0.1:6379/0", Connection),
            ("rediss://127.0.0.1:6379/0?ssl_cert_reqs=none", SSLConnection),
            ("unix:///tmp/redis.sock?db=0", UnixDomainSocketConnection),
        ],
    )
    def test_class_of_the_url(self, url: str, base: type) -> None:
        cls = pool.client(url).connection_pool.connection_class
        assert issubclass(cls, base)
        assert cls.pack_command is pool._HiredisPacking.pack_command

    def test_bounded(self) -> None:
        conns = pool.client("redis://127.0.0.1:1/0").connection_pool
        assert conns.max_connections == defaults.RECEIVER_REDIS_CONNECTIONS
        assert conns.timeout == defaults.RECEIVER_REDIS_WAIT_SECONDS
