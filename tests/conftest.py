"""Fixtures shared by every test package: a real Redis, fresh per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import redis

from core.settings import Settings
from ingest.embedded_redis import RedisServer

_db_numbers = itertools.cycle(range(1, 64))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole run, on a free port."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A fresh, empty database of the session's server for this test."""
    url = f"{redis_server.url}/{next(_db_numbers)}"
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    conn.close()
    yield url


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Settings for a test: the test's Redis database and a known tenant."""
    return Settings(
        redis_url=redis_url,
        graph_tenant_id="11111111-1111-1111-1111-111111111111",
        graph_allowed_tenants=("11111111-1111-1111-1111-111111111111",),
    )
