"""Insights written on Teams_Meeting__c by the Salesforce stage, against the Salesforce
emulator over HTTPS through simple-salesforce; and an org deployed before they existed."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from emulators.salesforce.app import Config
from emulators.salesforce.metadata import DEFAULT_DIR
from tests.workers.test_salesforce_stage import Server, ca_dir, cue, meeting, server
from workers.meeting import ResolvedTranscript
from workers.salesforce import schema, stage

__all__ = ["ca_dir", "server"]

NEW = ("Speaker_Count__c", "Longest_Monologue_Seconds__c", "Longest_Customer_Story_Seconds__c",
       "Interactivity__c", "Patience_Seconds__c", "Next_Steps__c")  # fmt: skip
# Two transcripts, each on its own clock; every cue lasts 0.9 s.
FIRST = "WEBVTT\n\n" + cue(0, "Carol Diaz", "Hello?") + cue(2, "Alice Adams", "I'll start.")
SECOND = (
    "WEBVTT\n\n"
    + cue(0, "Alice Adams", "Here it is.")
    + cue(1, "Alice Adams", "We will send the deck.")
    + cue(5, "Carol Diaz", "Thanks.")
)


def two() -> stage.ResolvedMeeting:
    texts = (ResolvedTranscript("t-1", FIRST), ResolvedTranscript("t-2", SECOND))
    return dataclasses.replace(meeting("m-insights"), transcripts=texts)


class TestInsightsWritten:
    """The meeting row carries every insight, from all its transcripts, in the same two calls."""

    def test_row(self, server: Server) -> None:
        conn, m = server.connection(), two()
        start = server.calls()
        ids = stage.write(conn, m)
        assert server.calls() - start == 2
        row = next(r for r in server.dump()["Teams_Meeting__c"] if r["Id"] == ids["meeting"])
        assert {name: row[name] for name in NEW} == {
            "Speaker_Count__c": 2,
            "Longest_Monologue_Seconds__c": 2,  # Alice 0-1.9 in the second transcript
            "Longest_Customer_Story_Seconds__c": 1,  # 0.9 s, rounded
            "Interactivity__c": 13.64,  # (1 switch in 2.9 s) + (1 in 5.9 s): 2 * 60 / 8.8
            "Patience_Seconds__c": 1.1,  # Carol ends 0.9, Alice answers at 2
            "Next_Steps__c": "Alice Adams: I'll start.\nAlice Adams: We will send the deck.",
        }


class TestOrgDeployedEarlier:
    """An org without the insight fields still gets its meeting, without them."""

    def test_written_without_them(self, ca_dir: Path, tmp_path: Path) -> None:
        project = tmp_path / "salesforce"
        shutil.copytree(DEFAULT_DIR, project)
        fields = project / "force-app" / "main" / "default" / "objects" / "Teams_Meeting__c"
        for name in NEW:
            (fields / "fields" / f"{name}.field-meta.xml").unlink()
        with Server(Config(metadata_dir=project), ca_dir) as srv:
            conn = srv.connection()
            assert conn.schema.optional["Teams_Meeting__c"] == set(
                schema.OPTIONAL["Teams_Meeting__c"]
            ) - set(NEW)
            ids = stage.write(conn, two())
            row = next(r for r in srv.dump()["Teams_Meeting__c"] if r["Id"] == ids["meeting"])
            assert row["Question_Count__c"] == 1 and "Speaker_Count__c" not in row
