"""Live shapes end to end, with the real Graph client: several transcripts, paged lists, and
a callRecord that exists only after the meeting was written (transcript first)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.graph.data import OPTIONS_KEY
from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from tests.e2e.test_pipeline_e2e import ALICE, CAROL, key_of, meeting_entries, outcome, settle
from workers.ledger import Ledger
from workers.salesforce import stage

OM = "GET /v1.0/users/{uid}/onlineMeetings/{meeting}"
TEXTS = [
    "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Alice Adams>Part one.</v>\n",
    "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Carol Diaz>Part two.</v>\n",
    "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Alice Adams>Part three.</v>\n",
]


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """The real Salesforce stage, watched: what was pushed, and what filled in (written to
    the Salesforce emulator of `Stack(..., salesforce=True)`)."""
    calls: dict[str, list[Any]] = {"push": [], "fill": []}
    real_push, real_fill = stage.push, stage.set_call_record

    def push(meeting: Any) -> dict[str, str]:
        calls["push"].append(meeting)
        return real_push(meeting)

    def fill(key: str, cr_id: str) -> None:
        calls["fill"].append((key, cr_id))
        real_fill(key, cr_id)

    monkeypatch.setattr(stage, "push", push)
    monkeypatch.setattr(stage, "set_call_record", fill)
    yield calls


class TestEveryTranscriptEveryPage:
    """Three transcripts listed two a page, thirteen attendees five a page: every page is read,
    every transcript fetched once and handed off in the order made, at one request more per
    extra transcript or page than a one-transcript meeting's six."""

    def test_call_record_path(
        self, redis_url: str, tmp_path: Path, resolved: dict[str, list[Any]]
    ) -> None:
        crowd = [{"email": f"guest{i:02d}@fabrikam.com"} for i in range(11)]
        doc = scenario(meeting("m1", people=[ALICE, CAROL, *crowd], transcript=None,
                               transcripts=TEXTS))  # fmt: skip
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            assert stack.graph_app is not None
            stack.graph_app[OPTIONS_KEY].transcripts_page = 2
            stack.graph_app[OPTIONS_KEY].attendance_page = 5
            stack.ensure_subscriptions()
            stack.drop_subscriptions("transcripts")
            stack.play("m1")
            settle(stack, "m1")
            assert outcome(stack, "m1") == "pushed"
            (pushed,) = resolved["push"]
            assert [t.vtt for t in pushed.transcripts] == TEXTS
            assert [t.id for t in pushed.transcripts] == stack.world.transcript_ids("m1")
            assert len(pushed.participants) == 13  # every attendance page was read
            spent = stack.graph_requests()
            assert spent[f"{OM}/transcripts"] == 2
            assert spent[f"{OM}/attendanceReports/{{report}}/attendanceRecords"] == 2
            assert spent[f"{OM}/transcripts/{{transcript}}/content"] == 3
            assert sum(spent.values()) == 6 + 2 + 1 + 2
            assert stack.stats()["transcript_content_downloads"] == {"m1": 3}


class TestTranscriptFirst:
    """The callRecord comes seconds after the transcript (live: up to hours): the meeting is
    handed off once without it, then its id is filled in, at no further Graph request."""

    def test_late_call_record(
        self, redis_url: str, tmp_path: Path, resolved: dict[str, list[Any]]
    ) -> None:
        doc = scenario(meeting("m1", callrecord_after_s=2.0))
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            stack.play("m1")
            settle(stack, "m1")
            assert outcome(stack, "m1") == "pushed"
            (pushed,) = resolved["push"]
            assert pushed.call_record_id is None
            spent = sum(stack.graph_requests().values())
            assert spent <= 6
            key = key_of(stack, "m1")
            cr_id = stack.world.call_record_id("m1")
            ledger = Ledger(stack.conn)

            def both_handled() -> bool:  # checked between bursts: their jobs are done
                seen = int(ledger.resource("callRecords", cr_id).get("notifications") or 0)
                return seen >= 2 and bool(resolved["fill"])

            assert stack.work(both_handled, timeout=30)
            assert resolved["fill"] == [(key, cr_id)]
            state = ledger.meeting(key or "")
            assert state["call_record_id"] == state["written_call_record_id"] == cr_id
            assert sum(stack.graph_requests().values()) == spent
            assert len(resolved["push"]) == 1 and meeting_entries(stack) == 1
            assert stack.stats()["transcript_content_downloads"] == {"m1": 1}
            # In Salesforce: one meeting row, its callRecord id filled in; one transcript.
            [row] = stack.salesforce_records("Teams_Meeting__c")
            assert row["Call_Record_Id__c"] == cr_id
            assert len(stack.salesforce_records("Teams_Transcript__c")) == 1
