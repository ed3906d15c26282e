"""`ingest serve` does not keep connections that send no request.

aiohttp closes a connection without a complete request head only when its keep-alive timer
fires (an AppRunner's default: 3,630 s), so silent connections and heads sent a byte at a
time (slowloris) were held for an hour each. The receiver gives a new connection
HEAD_SECONDS to send its first head and closes an idle one after KEEPALIVE_SECONDS; both are
shortened here so that the test is quick. Each connection below is read until the receiver
closes it: with aiohttp's default the reads would wait out their 30 s bound and fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from core.settings import Settings
from ingest.app import METRICS, create_app
from ingest.commands import serve

CLOSED_WITHIN = 30.0  # a bound far above the deadlines, not a timing


@pytest.fixture
async def receiver(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[web.Application, serve.InFlight, int]]:
    monkeypatch.setattr(serve, "HEAD_SECONDS", 0.5)
    monkeypatch.setattr(serve, "KEEPALIVE_SECONDS", 1.0)
    app = create_app(settings)
    in_flight = serve.InFlight()
    app.middlewares.insert(0, in_flight.middleware)
    runner, _site = await serve.listen(app, "127.0.0.1", 0, in_flight)
    try:
        yield app, in_flight, runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def closed_by_receiver(reader: asyncio.StreamReader) -> bytes:
    """Everything the receiver sent until it closed the connection."""
    return await asyncio.wait_for(reader.read(), CLOSED_WITHIN)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition`, within CLOSED_WITHIN."""
    deadline = asyncio.get_running_loop().time() + CLOSED_WITHIN
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def closed_count(app: web.Application) -> float:
    value = app[METRICS].registry.get_sample_value(
        "ingest_connections_closed_without_request_total"
    )
    return value or 0.0


class TestConnectionDeadlines:
    async def test_silent_connection_is_closed(
        self, receiver: tuple[web.Application, serve.InFlight, int]
    ) -> None:
        app, in_flight, port = receiver
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert await closed_by_receiver(reader) == b""
        finally:
            writer.close()
        assert closed_count(app) == 1 and not in_flight.awaiting_head

    async def test_head_sent_a_byte_at_a_time_is_closed(
        self, receiver: tuple[web.Application, serve.InFlight, int]
    ) -> None:
        app, _, port = receiver
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"POST /graph/notifications HTTP/1.1\r\nHost: receiver\r\nX-Slow: " + b"a" * 400

        async def dribble() -> None:
            # Each byte would restart a timer that waits for any data; the deadline holds.
            with contextlib.suppress(ConnectionError):
                for byte in head:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.05)

        sender = asyncio.create_task(dribble())
        try:
            # The head never ends (no blank line): only the deadline can close it.
            assert await closed_by_receiver(reader) == b""
        finally:
            sender.cancel()
            writer.close()
        assert closed_count(app) == 1

    async def test_refused_head_is_not_counted(
        self, receiver: tuple[web.Application, serve.InFlight, int]
    ) -> None:
        """A head aiohttp refuses (400) closes the connection at once; the deadline does not
        count it again."""
        app, in_flight, port = receiver
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /\x00 HTTP/1.1\r\nHost: receiver\r\n\r\n")
        await writer.drain()
        try:
            answer = await closed_by_receiver(reader)
        finally:
            writer.close()
        assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
        await until(lambda: not in_flight.awaiting_head)  # its deadline has come
        assert closed_count(app) == 0

    async def test_answered_then_idle_is_closed(
        self, receiver: tuple[web.Application, serve.InFlight, int]
    ) -> None:
        app, in_flight, port = receiver
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: receiver\r\n\r\n")
        await writer.drain()
        try:
            answer = await closed_by_receiver(reader)  # the answer, then the keep-alive close
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert b"Connection: close" not in answer  # it was kept alive, then closed idle
        # A connection that sent its request is not one closed "without a request".
        assert closed_count(app) == 0 and not in_flight.awaiting_head
