"""A recurring series on the Graph emulator through the real msgraph client: two weekly
occurrences share one online meeting id and join link, and come out as two meetings, each with
its own transcript downloaded once and written to its own Teams_Transcript__c (the FakeGraph
test of tests/workers/test_pipeline.py::TestRecurringSeries, here live-shaped)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from tests.e2e.test_pipeline_e2e import meeting_entries
from workers.ledger import Ledger

WEEK_1 = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Alice Adams>Week one.</v>\n"
WEEK_2 = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Alice Adams>Week two.</v>\n"


def occurrence_key(stack: Stack, mid: str) -> str | None:
    """The meeting key of one occurrence: by its own callRecord or transcript (the online
    meeting id names the whole series)."""
    ledger = Ledger(stack.conn)
    cr_id, t_id = stack.world.call_record_id(mid), stack.world.transcript_id(mid)
    return ledger.alias("cr", cr_id) or ledger.alias("tr", t_id)


def pushed(stack: Stack, mid: str) -> bool:
    key = occurrence_key(stack, mid)
    return key is not None and Ledger(stack.conn).meeting(key).get("outcome") == "pushed"


class TestRecurringSeries:
    def test_two_occurrences(self, redis_url: str, tmp_path: Path) -> None:
        first = meeting("w1", series="weekly", transcript=WEEK_1)
        second = meeting("w2", series="weekly", transcript=WEEK_2,
                         start="2026-11-27T15:00:00Z", end="2026-11-27T15:30:00Z")  # fmt: skip
        with Stack(scenario(first, second), redis_url, tmp_path, salesforce=True) as stack:
            w = stack.world
            assert w.online_meeting_id("w1") == w.online_meeting_id("w2")
            assert w.join_web_url("w1") == w.join_web_url("w2")
            stack.ensure_subscriptions()
            stack.play("w1")
            assert stack.work(lambda: pushed(stack, "w1"), 60)
            stack.play("w2")
            assert stack.work(lambda: pushed(stack, "w2"), 60)
            a, b = occurrence_key(stack, "w1"), occurrence_key(stack, "w2")
            assert a is not None and b is not None and a != b
            assert meeting_entries(stack) == 2
            assert stack.stats()["transcript_content_downloads"] == {"w1": 1, "w2": 1}
            meetings = stack.salesforce_records("Teams_Meeting__c")
            assert len(meetings) == 2
            texts = {t["Meeting__c"]: t["Text__c"] for t in
                     stack.salesforce_records("Teams_Transcript__c")}  # fmt: skip
            assert len(texts) == 2
            by_start = {m["Start__c"][:10]: m["Id"] for m in meetings}
            assert "Week one." in texts[by_start["2026-11-20"]]
            assert "Week two." in texts[by_start["2026-11-27"]]
