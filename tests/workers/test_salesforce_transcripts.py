"""Several transcripts per meeting in Salesforce, and a callRecord id filled in later: against
the Salesforce emulator over HTTPS, through simple-salesforce."""

from __future__ import annotations

import dataclasses

import pytest
import redis

from tests.workers.test_salesforce_stage import (
    Server,
    ca_dir,
    counts,
    cue,
    meeting,
    server,
)
from workers import context
from workers.meeting import ResolvedTranscript
from workers.salesforce import records, stage
from workers.vtt import SALESFORCE_TEXT_LIMIT

__all__ = ["ca_dir", "server"]

FIRST = "WEBVTT\n\n" + cue(0, "Alice Adams", "Shall we start?") + cue(3, "Carol Diaz", "Yes.")
LONG = "WEBVTT\n\n" + "".join(cue(i, "Carol Diaz", "word " * 60) for i in range(600))
THIRD = "WEBVTT\n\n" + cue(1, "Alice Adams", "Any questions? Anything else?")


def several() -> stage.ResolvedMeeting:
    texts = (ResolvedTranscript("t-a", FIRST), ResolvedTranscript("t-b", LONG),
             ResolvedTranscript("t-c", THIRD))  # fmt: skip
    return dataclasses.replace(meeting("m-three"), transcripts=texts)


class TestSeveralTranscripts:
    """Each transcript is its own Teams_Transcript__c keyed by its Graph transcript, with its
    own cues in Text__c; the meeting is still written in two calls, and again identically."""

    def test_one_record_each_in_two_calls(self, server: Server) -> None:
        conn, m = server.connection(), several()
        start = server.calls()
        ids = stage.write(conn, m)
        assert server.calls() - start == 2
        dump = server.dump()
        rows = {r["Transcript_Key__c"]: r for r in dump["Teams_Transcript__c"]}
        keys = [records.transcript_key(m, t) for t in m.transcripts]
        assert set(rows) == set(keys) and len(keys) == 3
        first, second, third = (rows[k] for k in keys)
        assert first["Text__c"] == "Alice Adams: Shall we start?\nCarol Diaz: Yes."
        assert third["Text__c"] == "Alice Adams: Any questions? Anything else?"
        assert second["Is_Truncated__c"] is True
        assert len(second["Text__c"]) <= SALESFORCE_TEXT_LIMIT
        assert [r["Name"] for r in (first, second, third)] == [
            f"Transcript {n}/3: Renewal call" for n in (1, 2, 3)
        ]
        assert {r["Meeting__c"] for r in rows.values()} == {ids["meeting"]}
        assert [ids["transcript"], ids["transcript2"], ids["transcript3"]] == [
            first["Id"], second["Id"], third["Id"]
        ]  # fmt: skip
        # Insights count every transcript's cues: one question in the first, two in the third.
        row = next(r for r in dump["Teams_Meeting__c"] if r["Id"] == ids["meeting"])
        assert row["Question_Count__c"] == 3
        # Only the truncated one has its full WebVTT attached.
        assert counts(dump)["ContentVersion"] == 1
        assert ids["file2"] == dump["ContentVersion"][0]["Id"]
        assert "file" not in ids and "file3" not in ids

    def test_replay_writes_the_same_records(self, server: Server) -> None:
        conn, m = server.connection(), several()
        stage.write(conn, m)
        before = server.dump()
        start = server.calls()
        stage.write(conn, m)
        assert server.calls() - start == 2
        assert counts(server.dump()) == counts(before)

    def test_too_many_for_one_write_is_permanent(self, server: Server) -> None:
        texts = tuple(ResolvedTranscript(f"t-{i}", LONG) for i in range(12))
        m = dataclasses.replace(meeting("m-many"), transcripts=texts)
        with pytest.raises(stage.UpstreamPermanent, match=r"12 transcripts .* at most 25"):
            stage.write(server.connection(), m)

    def test_first_key_unchanged(self) -> None:
        """The first transcript keeps the key a meeting of one transcript always had."""
        m = several()
        assert records.transcript_key(m, m.transcripts[0]) == records.external_key("m-three/t/t-a")


class TestCallRecordFilledLater:
    """A meeting written before its callRecord existed gets Call_Record_Id__c in one call,
    on the same row (an upsert by external id), nothing else touched."""

    def test_one_call_same_row(self, server: Server, redis_conn: redis.Redis) -> None:
        settings = server.settings()
        context.install(context.WorkerContext(settings, redis_conn))
        try:
            early = dataclasses.replace(meeting("m-late"), call_record_id=None)
            ids = stage.push(early)
            before = server.dump()
            assert before["Teams_Meeting__c"][0].get("Call_Record_Id__c") is None
            start = server.calls()
            stage.set_call_record("m-late", "e523d2ed-2966-4b6b-925b-754a88034cc5")
            assert server.calls() - start == 1
            after = server.dump()
            assert counts(after) == counts(before)
            row = after["Teams_Meeting__c"][0]
            assert row["Id"] == ids["meeting"]
            assert row["Call_Record_Id__c"] == "e523d2ed-2966-4b6b-925b-754a88034cc5"
            assert row["Name"] == before["Teams_Meeting__c"][0]["Name"]
        finally:
            context.reset()
