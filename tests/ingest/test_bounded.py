"""No single request buys unbounded work: an item cap, large bodies parsed off the loop, and
one `security_event` per request, at most one a second per client.

The times these bounds buy (answer and /healthz latency under a 1 MiB body of 500,000
items) are measured by bench/receiver.py; the tests pin the behaviour.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from rq import Queue
from structlog.testing import capture_logs

from core import defaults
from ingest.app import PARSER, SECURITY_LOG
from ingest.bounded import Parser, Refused, Screened, screen
from ingest.metrics import ReceiverMetrics
from tests.ingest import payloads as p
from workers.subscriptions import CLIENT_STATE_BYTES

Client = TestClient[web.Request, web.Application]
JSON = {"Content-Type": "application/json"}
CAP = defaults.MAX_ITEMS_PER_REQUEST


async def post_bytes(client: Client, data: bytes) -> int:
    resp = await client.post("/graph/notifications", data=io.BytesIO(data), headers=JSON)
    return resp.status


def zeros(n: int, pad: str = "") -> bytes:
    """`{"value":[0,0,…]}`, each item optionally a string of padding instead."""
    one = json.dumps(pad).encode() if pad else b"0"
    return b'{"value":[' + b",".join([one] * n) + b"]}"


def call_records(n: int) -> bytes:
    items = [p.call_record(cr_id=f"e523d2ed-2966-4b6b-925b-{k:012d}") for k in range(n)]
    return json.dumps(p.body(*items)).encode()


def dropped(metrics: ReceiverMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("ingest_notifications_dropped_total",
                                              {"reason": reason})  # fmt: skip
    return value or 0.0


class TestItemCap:
    """More than MAX_ITEMS_PER_REQUEST items is 413, whether parsed inline or in the child."""

    def test_the_cap_is_above_what_a_mebibyte_of_real_items_holds(self) -> None:
        """A 413 is retried by Graph and then lost: no genuine body may reach the cap. The
        smallest genuine item is a lifecycle one, in compact JSON, with our clientState."""
        item = p.lifecycle("missed")
        item["clientState"] = secrets.token_urlsafe(CLIENT_STATE_BYTES)
        smallest = len(json.dumps(item, separators=(",", ":")).encode()) + 1  # and a comma
        assert defaults.MAX_BODY_BYTES // smallest < CAP

    @pytest.mark.parametrize("pad", ["", "x" * 40], ids=["inline", "child process"])
    async def test_just_under_and_just_over(
        self, client: Client, queue: Queue, metrics: ReceiverMetrics, pad: str
    ) -> None:
        under, over = zeros(CAP, pad), zeros(CAP + 1, pad)
        inline = defaults.INLINE_PARSE_BYTES
        assert (len(over) > inline) == bool(pad)  # the two paths are both exercised
        with capture_logs() as logs:
            assert await post_bytes(client, under) == 202
            assert await post_bytes(client, over) == 413
        assert queue.count == 0
        assert dropped(metrics, "malformed_item") == CAP
        [event] = [e for e in logs if e["event"] == "security_event"]
        assert event["reasons"] == {"malformed_item": CAP}
        [refusal] = [e for e in logs if e["event"] == "notification_rejected"]
        assert refusal["status"] == 413

    async def test_the_half_million_item_body(self, client: Client, queue: Queue) -> None:
        """issue 12's body: 1 MB of `0`s. One line in the log, not one per item."""
        body = zeros(500_000)
        assert len(body) <= defaults.MAX_BODY_BYTES
        with capture_logs() as logs:
            assert await post_bytes(client, body) == 413
            resp = await client.get("/healthz")
            assert resp.status == 200
        assert [e["event"] for e in logs] == ["notification_rejected"]
        assert len(json.dumps(logs)) < 1000
        assert queue.count == 0


class TestLargeBodies:
    """Bodies over INLINE_PARSE_BYTES are screened in a child process and stored as usual."""

    async def test_a_large_genuine_batch_is_stored(self, client: Client, queue: Queue) -> None:
        body = call_records(300)
        assert len(body) > defaults.INLINE_PARSE_BYTES
        assert await post_bytes(client, body) == 202
        assert queue.count == 300

    async def test_large_bodies_are_parsed_in_another_process(self) -> None:
        parser = Parser(max_items=CAP, inline_bytes=1024)
        try:
            pid = await parser.run(os.getpid)
            assert pid != os.getpid()
            result = await parser.screen(call_records(10))
            assert isinstance(result, Screened)
            assert (result.received, len(result.candidates), result.drops.total) == (10, 10, 0)
        finally:
            await parser.close()

    async def test_a_dead_child_is_replaced(self, client: Client, queue: Queue) -> None:
        parser = client.app[PARSER]
        os.kill(await parser.run(os.getpid), signal.SIGKILL)  # as the OOM killer would
        assert await post_bytes(client, call_records(200)) == 503  # Graph retries it
        assert await post_bytes(client, call_records(200)) == 202
        assert queue.count == 200

    @pytest.mark.parametrize(
        ("body", "status"),
        [(b"[" * 100_000, 400), (b'{"value": 1}', 400), (b"\xff" * 70_000, 400)],
    )
    def test_screen_refuses_what_is_not_a_body(self, body: bytes, status: int) -> None:
        result = screen(body, CAP)
        assert isinstance(result, Refused) and result.status == status


class TestDropLog:
    """Drops are one `security_event` per request with counts and samples, rate-limited."""

    async def test_one_line_with_counts_by_reason_and_samples(
        self, client: Client, queue: Queue
    ) -> None:
        items: list[Any] = [0] * 500 + [p.call_record(clientState="guess")] * 10
        items += [p.call_record(subscriptionId="99999999-9999-9999-9999-999999999999")] * 5
        items.append(p.call_record())
        with capture_logs() as logs:
            assert await post_bytes(client, json.dumps({"value": items}).encode()) == 202
        assert queue.count == 1
        [event] = [e for e in logs if e["event"] == "security_event"]
        assert event["dropped"] == 515
        assert event["reasons"] == {"malformed_item": 500, "bad_client_state": 10,
                                    "unknown_subscription": 5}  # fmt: skip
        assert len(event["samples"]) == 3
        assert event["client"] == "127.0.0.1"
        assert p.CR_STATE not in json.dumps(logs, default=str)

    async def test_one_line_a_second_per_client(
        self, client: Client, metrics: ReceiverMetrics
    ) -> None:
        now = [0.0]
        client.app[SECURITY_LOG].clock = lambda: now[0]
        with capture_logs() as logs:
            for _ in range(4):
                assert await post_bytes(client, zeros(3)) == 202
            now[0] += defaults.SECURITY_LOG_INTERVAL_SECONDS
            assert await post_bytes(client, zeros(2)) == 202
        events = [e for e in logs if e["event"] == "security_event"]
        assert [e["dropped"] for e in events] == [3, 2]
        assert (events[1]["suppressed_requests"], events[1]["suppressed_items"]) == (3, 9)
        assert dropped(metrics, "malformed_item") == 14  # the metrics count every item
        suppressed = metrics.registry.get_sample_value("ingest_security_events_suppressed_total")
        assert suppressed == 3

    def test_clients_are_limited_separately(self) -> None:
        from ingest.drops import DropTally, SecurityLog

        tally = DropTally()
        tally.add("malformed_item", 0)
        log = SecurityLog(clock=lambda: 5.0)
        with capture_logs() as logs:
            assert [log.dropped(c, tally) for c in ("10.0.0.1", "10.0.0.2", "10.0.0.1")] == [
                True, True, False]  # fmt: skip
        assert [e["client"] for e in logs] == ["10.0.0.1", "10.0.0.2"]
