"""Malformed HTTP that aiohttp refuses itself is logged as one INFO line, never an ERROR."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from core.settings import Settings
from ingest.app import create_app
from ingest.malformed import SERVER_LOGGER, ClientErrors


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestServer]:
    async with TestServer(create_app(settings)) as srv:
        yield srv


async def exchange(server: TestServer, data: bytes) -> bytes:
    """Send raw bytes; everything the receiver answers until it closes the connection."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SERVER_LOGGER]


class TestRefusedByTheParser:
    """A request aiohttp's parser refuses gets its 400 and one INFO line without traceback."""

    @pytest.mark.parametrize(
        "head",
        [
            b"POST /graph/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            b"POST /graph/notifications?\xa3\x8a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /graph/notifications HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        ],
        ids=["both framings", "bytes in the URL", "head line too long"],
    )
    async def test_info_not_error(
        self, server: TestServer, caplog: pytest.LogCaptureFixture, head: bytes
    ) -> None:
        answer = await exchange(server, head)
        assert answer.split(b"\r\n")[0].split(b" ")[1] == b"400"  # aiohttp answers HTTP/1.0
        records = server_records(caplog)
        assert [r.levelname for r in records] == ["INFO"]
        assert records[0].getMessage().startswith("request refused by the HTTP parser: 400")
        assert records[0].exc_info is None

    async def test_an_undecodable_body_discarded_after_the_answer(
        self, server: TestServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Answered 415 unread; aiohttp then reads the body to discard it, and it will not
        # decode as gzip.
        body = b"not gzip at all" * 100
        head = (b"POST /graph/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body))  # fmt: skip
        answer = await exchange(server, head + body)
        assert answer.startswith(b"HTTP/1.1 415 ")
        deadline = time.monotonic() + 5
        while not server_records(caplog):  # logged once aiohttp has read the rest
            assert time.monotonic() < deadline, "aiohttp logged nothing about the body"
            await asyncio.sleep(0.01)
        records = server_records(caplog)
        assert [r.levelname for r in records] == ["INFO"]
        assert records[0].getMessage().startswith("request body discarded: ")


class TestOtherErrorsStay:
    """Anything else aiohttp logs keeps its level and traceback."""

    def test_a_handler_exception_stays_an_error(self) -> None:
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            info = (type(exc), exc, None)
            record = logging.LogRecord(
                SERVER_LOGGER, logging.ERROR, __file__, 1, "Error handling request", None, info
            )
        assert ClientErrors().filter(record)
        assert (record.levelname, record.getMessage()) == ("ERROR", "Error handling request")
        assert record.exc_info is not None
