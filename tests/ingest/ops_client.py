"""The ops page's test client and fixtures: an app with a token, a failed job, a session."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rq import Queue
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from core.settings import Settings
from ingest.app import create_app
from ingest.ops_auth import COOKIE
from workers.worker import build_worker

TOKEN = "ops-token-for-the-tests-0123456789abcdef"
CLIENT_STATE = "client-state-that-must-never-show-0123456789"
SECRET_KEY = "secret-key-for-sealing-0123456789abcdef"
GRAPH_SECRET = "graph-client-secret-never-shown"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def ops_settings(settings: Settings) -> Settings:
    return replace(settings, ops_token=TOKEN, secret_key=SECRET_KEY,
                   graph_client_secret=GRAPH_SECRET)  # fmt: skip


async def _client(settings: Settings) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


@pytest.fixture
async def ops(ops_settings: Settings) -> AsyncIterator[Client]:
    async for c in _client(ops_settings):
        yield c


@pytest.fixture
def queue(redis_conn: redis.Redis) -> Queue:
    return Queue("ingest", connection=redis_conn, serializer=JSONSerializer)


@pytest.fixture
def failed_job(queue: Queue, redis_conn: redis.Redis, settings: Settings) -> Iterator[str]:
    """A job that RQ's worker ran and that failed: `int("not a number")`."""
    job = queue.enqueue("builtins.int", "not a number")
    queue.enqueue("builtins.len", "counted as ok")
    build_worker(settings, redis_conn).work(burst=True, logging_level="ERROR")
    assert FailedJobRegistry(queue=queue).get_job_ids() == [job.id]
    yield job.id


async def sign_in(client: Client) -> tuple[str, str]:
    """Sign in by the form; the session cookie and the page's CSRF token."""
    resp = await client.post("/ops/login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ops"
    cookie = resp.cookies[COOKIE].value
    page = await client.get("/ops", cookies={COOKIE: cookie})
    assert page.status == 200
    found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert found is not None
    return cookie, html.unescape(found.group(1))
