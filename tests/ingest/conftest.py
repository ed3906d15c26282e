"""Receiver fixtures: a registry with known subscriptions, an in-process test client, and for
rich notifications a JWKS endpoint with the key the tests sign validation tokens with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rq import Queue
from rq.serializers import JSONSerializer

from core.settings import Settings
from ingest.app import create_app
from ingest.metrics import ReceiverMetrics
from tests.ingest import payloads as p
from tests.ingest.jwts import APP_ID, Jwks, Signer
from workers import registry


def register_known(conn: redis.Redis) -> None:
    """The registry as `ingest subscriptions ensure` leaves it: two subscriptions, marked."""
    registry.mark(conn)
    registry.save(conn, registry.Subscription(
        id=p.CR_SUB, resource="communications/callRecords", kind="callRecords",
        client_state=p.CR_STATE, tenant_id=p.TENANT, expires_at="2026-12-03T00:00:00+00:00",
    ))  # fmt: skip
    registry.save(conn, registry.Subscription(
        id=p.TR_SUB, resource="communications/onlineMeetings/getAllTranscripts",
        kind="transcripts", client_state=p.TR_STATE, tenant_id=p.TENANT,
        expires_at="2026-11-29T08:29:11+00:00",
    ))  # fmt: skip


@pytest.fixture
def queue(redis_conn: redis.Redis) -> Queue:
    return Queue("ingest", connection=redis_conn, serializer=JSONSerializer)


@pytest.fixture
def metrics() -> ReceiverMetrics:
    return ReceiverMetrics()


@pytest.fixture
async def client(
    settings: Settings, redis_conn: redis.Redis, metrics: ReceiverMetrics
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    register_known(redis_conn)
    app = create_app(settings, metrics=metrics)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture(scope="session")
def signer() -> Signer:
    """The key the identity platform signs validation tokens with (made once: 2048-bit)."""
    return Signer()


@pytest.fixture(scope="session")
def other_signer() -> Signer:
    return Signer()


@pytest.fixture
async def jwks(signer: Signer) -> AsyncIterator[Jwks]:
    async with Jwks(signer).serving() as served:
        yield served


@pytest.fixture
def rich_settings(settings: Settings, jwks: Jwks) -> Settings:
    """Our app id and the test's JWKS endpoint as the identity authority."""
    return replace(settings, graph_client_id=APP_ID, graph_authority=jwks.url)


@pytest.fixture
async def rich_app(
    rich_settings: Settings, redis_conn: redis.Redis, metrics: ReceiverMetrics
) -> web.Application:
    register_known(redis_conn)
    return create_app(rich_settings, metrics=metrics)


@pytest.fixture
async def rich_client(
    rich_app: web.Application,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(rich_app)) as c:
        yield c
