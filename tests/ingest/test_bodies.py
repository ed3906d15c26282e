"""Bodies under a deadline and a budget (ingest/bodies.py), over raw TCP on a real port.

A stalled body has its connection closed without an answer; past the byte budget a body is
refused 503 (Graph retries); a body that does not match its Content-Encoding is 400; a
client that drops mid-body logs one INFO line. None of them logs an ERROR.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from rq import Queue
from structlog.testing import capture_logs

from ingest import bodies
from ingest.app import BODIES, SETTINGS
from tests.ingest import payloads as p

Client = TestClient[web.Request, web.Application]
BODY = json.dumps(p.body(p.call_record())).encode()


def head(length: int, **extra: str) -> bytes:
    lines = ["POST /graph/notifications HTTP/1.1", "Host: receiver",
             "Content-Type: application/json", f"Content-Length: {length}"]  # fmt: skip
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def until(what: Callable[[], Any], seconds: float = 10.0) -> Any:
    """Poll `what` until it is truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (found := what()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
    return found


async def connect(client: Client) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = client.server.port
    assert port is not None
    return await asyncio.open_connection("127.0.0.1", port)


async def answer_then_close(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (within `seconds`)."""
    async with asyncio.timeout(seconds):
        return await reader.read()  # to EOF: returns only once the server closed


def errors(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["log_level"] in ("error", "critical", "exception")]


class TestDeadline:
    async def test_a_stalled_body_is_closed_without_an_answer(self, client: Client) -> None:
        client.app[BODIES].timeout = 0.5
        reader, writer = await connect(client)
        with capture_logs() as logs:
            writer.write(head(len(BODY)) + BODY[: len(BODY) // 2])  # then nothing more
            await writer.drain()
            # Closed at the deadline: within 5 s, not after aiohttp's ten of lingering.
            got = await answer_then_close(reader, 5.0)
        assert got == b""  # no status DESIGN §3.2 does not list
        assert [e["event"] for e in logs if e["event"].startswith("body_")] == ["body_timeout"]
        assert not errors(logs)
        writer.close()

    async def test_a_whole_body_in_time_is_stored(self, client: Client, queue: Queue) -> None:
        reader, writer = await connect(client)
        writer.write(head(len(BODY)) + BODY)
        await writer.drain()
        async with asyncio.timeout(5):
            status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 202 ")
        assert queue.count == 1
        writer.close()


class TestBudget:
    async def test_past_the_budget_is_503_with_retry_after(
        self, client: Client, queue: Queue
    ) -> None:
        gate = client.app[BODIES]
        gate.budget_bytes = len(BODY) + 10
        first_r, first_w = await connect(client)
        first_w.write(head(len(BODY)) + BODY[:10])
        await first_w.drain()
        await until(lambda: gate.in_flight == len(BODY))  # the first body holds the budget
        second_r, second_w = await connect(client)
        with capture_logs() as logs:
            second_w.write(head(len(BODY)) + BODY)
            await second_w.drain()
            got = await answer_then_close(second_r, 5.0)
        assert got.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 5" in got
        assert [e["event"] for e in logs if e["event"].startswith("body_")] == ["body_refused"]
        assert not errors(logs)
        first_w.write(BODY[10:])  # the first body completes and is stored
        await first_w.drain()
        async with asyncio.timeout(5):
            assert (await first_r.readline()).startswith(b"HTTP/1.1 202 ")
        assert queue.count == 1 and gate.in_flight == 0
        first_w.close()
        second_w.close()

    async def test_a_compressed_body_reserves_the_size_limit(self, client: Client) -> None:
        """It may decode to the limit, however short its Content-Length."""
        gate = client.app[BODIES]
        packed = gzip.compress(BODY)
        _, writer = await connect(client)
        writer.write(head(len(packed), Content_Encoding="gzip") + packed[:10])
        await writer.drain()
        await until(lambda: gate.in_flight > 0)
        assert gate.in_flight == client.app[SETTINGS].max_body_bytes
        writer.close()
        await until(lambda: gate.in_flight == 0)

    async def test_one_body_is_let_in_even_over_the_budget(
        self, client: Client, queue: Queue
    ) -> None:
        client.app[BODIES].budget_bytes = 10
        reader, writer = await connect(client)
        writer.write(head(len(BODY)) + BODY)
        await writer.drain()
        async with asyncio.timeout(5):
            assert (await reader.readline()).startswith(b"HTTP/1.1 202 ")
        assert queue.count == 1
        writer.close()


class TestUndecodable:
    @pytest.mark.parametrize("encoding", ["gzip", "deflate"])
    async def test_a_plain_body_labelled_compressed_is_400(
        self, client: Client, queue: Queue, encoding: str
    ) -> None:
        reader, writer = await connect(client)
        with capture_logs() as logs:
            writer.write(head(len(BODY), Content_Encoding=encoding) + BODY)
            await writer.drain()
            async with asyncio.timeout(5):
                status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 400 ")
        [line] = [e for e in logs if e["event"] == "body_undecodable"]
        assert line["log_level"] == "info" and line["encoding"] == encoding
        assert not errors(logs)
        assert queue.count == 0
        writer.close()

    async def test_a_real_gzip_body_is_still_read(self, client: Client, queue: Queue) -> None:
        packed = gzip.compress(BODY)
        reader, writer = await connect(client)
        writer.write(head(len(packed), Content_Encoding="gzip") + packed)
        await writer.drain()
        async with asyncio.timeout(5):
            assert (await reader.readline()).startswith(b"HTTP/1.1 202 ")
        assert queue.count == 1
        writer.close()


class TestAborted:
    async def test_a_client_dropping_mid_body_logs_info(self, client: Client, queue: Queue) -> None:
        gate = client.app[BODIES]
        _, writer = await connect(client)
        with capture_logs() as logs:
            writer.write(head(len(BODY)) + BODY[:20])
            await writer.drain()
            await until(lambda: gate.in_flight > 0)  # the handler is reading the body
            writer.close()
            await until(lambda: any(e["event"] == "body_aborted" for e in logs))
            await until(lambda: gate.in_flight == 0)
        [line] = [e for e in logs if e["event"] == "body_aborted"]
        assert line["log_level"] == "info"
        assert not errors(logs)
        assert queue.count == 0


class TestTrim:
    async def test_freed_pages_go_back_once_a_flood_is_over(self, client: Client) -> None:
        gate = client.app[BODIES]
        filler = b'{"value":[]}' + b" " * (512 * 1024)
        for _ in range(bodies.TRIM_AFTER_BYTES // len(filler) + 1):
            resp = await client.post("/graph/notifications", data=filler,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
            assert resp.status == 202
        await until(lambda: gate.trims >= 1)
