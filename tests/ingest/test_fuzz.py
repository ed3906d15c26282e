"""Fuzzing the receiver: it never answers 500 and never stores an item that is not genuine."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rq import Queue
from rq.serializers import JSONSerializer

from core.settings import Settings
from ingest.app import create_app
from ingest.embedded_redis import RedisServer
from tests.ingest import payloads as p
from tests.ingest.conftest import register_known
from tests.ports import bound_socket, port_of

FUZZ_DB = 0  # the per-test fixtures cycle through databases 1-63
SAFE_RESOURCE = re.compile(
    r"/?(communications/callRecords/[0-9a-fA-F-]{36}"
    r"|(communications|users\('[0-9a-fA-F-]{36}'\))/onlineMeetings\('[A-Za-z0-9+/=_-]+'\)"
    r"/transcripts\('[A-Za-z0-9+/=_-]+'\))"
)
STATES = {p.CR_SUB: p.CR_STATE, p.TR_SUB: p.TR_STATE}


class Server:
    """The receiver on a real port, served from a thread's event loop."""

    def __init__(self, settings: Settings) -> None:
        self.sock = bound_socket()
        self.port = port_of(self.sock)
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(create_app(settings), access_log=None)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def post(
        self,
        body: bytes,
        content_type: str | None = "application/json",
        path: str = "/graph/notifications",
    ) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request("POST", path, body=body, headers=headers)
        status = conn.getresponse().status
        conn.close()
        return status


@pytest.fixture(scope="module")
def fuzz_env(redis_server: RedisServer) -> Iterator[tuple[Server, redis.Redis]]:
    url = f"{redis_server.url}/{FUZZ_DB}"
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    register_known(conn)
    server = Server(
        Settings(redis_url=url, graph_tenant_id=p.TENANT, graph_allowed_tenants=(p.TENANT,))
    )
    server.start()
    yield server, conn
    server.stop()
    conn.flushdb()
    conn.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
resources = st.one_of(
    st.just(f"communications/callRecords/{p.CALL_RECORD_ID}"),
    st.builds(lambda s: f"communications/callRecords/{s}", st.text(max_size=60)),
    st.builds(
        lambda a, b: f"communications/onlineMeetings('{a}')/transcripts('{b}')",
        st.text(max_size=30),
        st.text(max_size=30),
    ),
    st.text(max_size=80),
)


def _recase(key: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if f else c for c, f in zip(key, flips + [False] * len(key), strict=False)
    )


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(st.sampled_from([p.call_record(), p.transcript(), p.lifecycle()]))
    item: dict[str, Any] = dict(base)
    for key in list(item):
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "junk", "recase"]))
        if action == "drop":
            del item[key]
        elif action == "junk":
            item[key] = draw(json_values)
        elif action == "recase":
            flips = draw(st.lists(st.booleans(), max_size=len(key)))
            item[_recase(key, flips)] = item.pop(key)
    if draw(st.booleans()):
        item["resource"] = draw(resources)
    if draw(st.booleans()):
        item["subscriptionId"] = draw(st.sampled_from([p.CR_SUB, p.TR_SUB, "x", ""]))
    return item


def _get(item: dict[str, Any], key: str) -> Any:
    for k, v in item.items():
        if isinstance(k, str) and k.lower() == key.lower():
            return v
    return None


def stored(conn: redis.Redis) -> list[dict[str, Any]]:
    queue = Queue("ingest", connection=conn, serializer=JSONSerializer)
    return [job.args[0] for job in queue.jobs]


class TestFuzz:
    """Whatever arrives, the answer is 200/202/400/413/415 and only genuine items are stored."""

    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        body=st.binary(max_size=300),
        content_type=st.sampled_from(
            [
                None,
                "application/json",
                "text/plain",
                "application/json; charset=utf-8",
                "*/*",
                "json",
            ]
        ),
    )
    def test_arbitrary_bytes(
        self, fuzz_env: tuple[Server, redis.Redis], body: bytes, content_type: str | None
    ) -> None:
        server, conn = fuzz_env
        before = Queue("ingest", connection=conn, serializer=JSONSerializer).count
        assert server.post(body, content_type) in (202, 400, 413, 415)
        assert Queue("ingest", connection=conn, serializer=JSONSerializer).count == before

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        batch=st.lists(items(), max_size=5),
        path=st.sampled_from(["/graph/notifications", "/graph/lifecycle"]),
    )
    def test_mutated_items(
        self, fuzz_env: tuple[Server, redis.Redis], batch: list[dict[str, Any]], path: str
    ) -> None:
        server, conn = fuzz_env
        conn.delete("rq:queue:ingest")
        assert server.post(json.dumps({"value": batch}).encode(), path=path) == 202
        genuine = [
            i
            for i in batch
            if isinstance(_get(i, "subscriptionId"), str)
            and STATES.get(_get(i, "subscriptionId")) == _get(i, "clientState")
            and _get(i, "tenantId") == p.TENANT
        ]
        jobs = stored(conn)
        assert len(jobs) <= len(genuine)
        for job in jobs:
            assert job["subscriptionId"] in STATES
            assert job["tenantId"] == p.TENANT
            assert "clientState" not in job
            if "resource" in job:
                assert SAFE_RESOURCE.fullmatch(job["resource"]), job["resource"]
                assert job["changeType"] in ("created", "updated")
            else:
                assert job["lifecycleEvent"] in (
                    "reauthorizationRequired",
                    "subscriptionRemoved",
                    "missed",
                )

    def test_the_oracle_sees_stored_items(self, fuzz_env: tuple[Server, redis.Redis]) -> None:
        server, conn = fuzz_env
        conn.delete("rq:queue:ingest")
        item = p.call_record(cr_id="abcdef01-2966-4b6b-925b-754a88034cc5")
        assert server.post(json.dumps({"value": [item]}).encode()) == 202
        assert [j["ids"]["callRecordId"] for j in stored(conn)] == [
            "abcdef01-2966-4b6b-925b-754a88034cc5"
        ]

    @settings(max_examples=150, deadline=None)
    @given(
        token=st.text(min_size=1, max_size=200).filter(lambda t: "\x00" not in t),
        path=st.sampled_from(["/graph/notifications", "/graph/lifecycle"]),
        content_type=st.sampled_from([None, "text/plain; charset=utf-8", "application/json"]),
        body=st.binary(max_size=64),
    )
    def test_any_token_is_echoed(
        self,
        fuzz_env: tuple[Server, redis.Redis],
        token: str,
        path: str,
        content_type: str | None,
        body: bytes,
    ) -> None:
        from urllib.parse import quote

        server, _ = fuzz_env
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request(
            "POST", f"{path}?validationToken={quote(token, safe='')}", body=body, headers=headers
        )
        resp = conn.getresponse()
        answer = (resp.status, resp.getheader("Content-Type"), resp.read().decode())
        conn.close()
        assert answer == (200, "text/plain; charset=utf-8", token)
