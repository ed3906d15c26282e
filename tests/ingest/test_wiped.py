"""The receiver while Redis has lost the subscription registry (no generation marker): items
of unknown subscriptions are answered 503 so that Graph retries them, not dropped with 202."""

from __future__ import annotations

import json

import redis
from aiohttp import web
from aiohttp.test_utils import TestClient
from rq import Queue
from structlog.testing import capture_logs

from core import keys
from ingest.app import REGISTRY
from tests.ingest import payloads as p

Client = TestClient[web.Request, web.Application]
JSON = {"Content-Type": "application/json"}
STRANGER = "99999999-9999-9999-9999-999999999999"


async def post(client: Client, *items: dict[str, object]) -> int:
    resp = await client.post("/graph/notifications", data=json.dumps(p.body(*items)),
                             headers=JSON)  # fmt: skip
    return resp.status


class TestWipedRegistry:
    async def test_unknown_items_are_503_while_the_marker_is_missing(
        self, client: Client, redis_conn: redis.Redis, queue: Queue
    ) -> None:
        redis_conn.flushdb()
        with capture_logs() as logs:
            assert await post(client, p.call_record(subscriptionId=STRANGER)) == 503
        assert queue.count == 0
        events = [e["event"] for e in logs]
        assert "registry_wiped" in events and "security_event" not in events

    async def test_a_whole_batch_comes_again(
        self, client: Client, redis_conn: redis.Redis, queue: Queue
    ) -> None:
        """A known item beside an unknown one is not enqueued now: Graph resends both."""
        await post(client, p.call_record(cr_id="e523d2ed-2966-4b6b-925b-000000000001"))
        assert queue.count == 1  # the registry is in the receiver's memory now
        redis_conn.delete(keys.GENERATION)
        client.app[REGISTRY].miss_refresh_s = 0  # the next miss reloads: no marker there
        status = await post(client, p.call_record(cr_id="e523d2ed-2966-4b6b-925b-000000000002"),
                            p.call_record(subscriptionId=STRANGER))  # fmt: skip
        assert status == 503
        assert queue.count == 1

    async def test_with_the_marker_unknown_items_are_dropped(
        self, client: Client, queue: Queue
    ) -> None:
        assert await post(client, p.call_record(subscriptionId=STRANGER)) == 202
        assert queue.count == 0
