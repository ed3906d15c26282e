"""`ingest explain`: the ledger's story of a meeting, by online meeting id or callRecord id."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from core.exceptions import BadInput
from core.settings import Settings
from ingest.cli import main
from ingest.explain import render, story
from tests.workers.fake_graph import ALICE, CAROL, OTHER_TENANT, TENANT, FakeGraph, FakeMeeting
from tests.workers.fake_graph import user as identity
from tests.workers.test_pipeline import cr_payload
from workers import users
from workers.ledger import Ledger
from workers.pipeline import Pipeline


def run_meeting(conn: redis.Redis, m: FakeMeeting) -> str:
    users.add(conn, users.EciUser(id=ALICE, upn="alice@contoso.com"))
    graph = FakeGraph(m)
    settings = Settings(graph_tenant_id=TENANT, internal_domains=("contoso.com",))
    queue = Queue("ingest", connection=conn, serializer=JSONSerializer)
    return Pipeline(conn, settings, lambda: graph, queue).on_call_record(cr_payload(m))[
        "meeting_key"]  # fmt: skip


def eligible() -> FakeMeeting:
    carol = identity(CAROL, "External user", None, OTHER_TENANT)
    return FakeMeeting("x1", people=[carol], emails={CAROL: "carol@fabrikam.com"})


class TestStory:
    """Either id leads to the same story, with the decision, split and events, never the text."""

    def test_by_either_id(self, redis_conn: redis.Redis) -> None:
        m = eligible()
        key = run_meeting(redis_conn, m)
        ledger = Ledger(redis_conn)
        by_cr, by_om = story(ledger, m.call_record_id), story(ledger, m.online_meeting_id)
        assert by_cr == by_om
        assert by_cr["meeting_key"] == key
        assert by_cr["reason"] == "external_participants"
        assert by_cr["participants"]["external"] == ["carol@fabrikam.com"]
        assert "Hello Carol" not in json.dumps(by_cr)
        text = render(by_cr)
        assert "external_participants" in text
        assert "carol@fabrikam.com" in text
        assert "transcript fetched" in text

    def test_unknown(self, redis_conn: redis.Redis) -> None:
        with pytest.raises(BadInput):
            story(Ledger(redis_conn), "nope")

    def test_failure_before_meeting_known(self, redis_conn: redis.Redis) -> None:
        ledger = Ledger(redis_conn)
        ledger.resource_error("callRecords", "abc", "Graph 403 Forbidden: consent")
        doc = story(ledger, "ABC")
        assert doc["resource"]["last_error"] == "Graph 403 Forbidden: consent"
        assert "403" in render(doc)


class TestCommand:
    """`ingest explain ID --json` prints one JSON document; an unknown id exits 1."""

    def test_json(
        self, redis_conn: redis.Redis, redis_url: str, monkeypatch: Any, capsys: Any
    ) -> None:
        m = FakeMeeting("x2", end="2026-11-20T15:00:10Z")
        run_meeting(redis_conn, m)
        capsys.readouterr()  # the pipeline's own log lines (structlog unconfigured in tests)
        monkeypatch.setenv("REDIS_URL", redis_url)
        assert main(["explain", m.call_record_id, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert (doc["reason"], doc["outcome"]) == ("too_short", "skipped")
        assert main(["explain", "unknown-id"]) == 1
