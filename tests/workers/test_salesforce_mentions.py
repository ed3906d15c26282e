"""Tracker mentions in Salesforce, in the same two API calls as the meeting: written once,
replayed without duplicates, deleted when their tracker goes; against the Salesforce emulator
over HTTPS through simple-salesforce."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import redis

from emulators.salesforce.app import Config
from emulators.salesforce.metadata import DEFAULT_DIR
from tests.workers.test_salesforce_stage import Server, ca_dir, cue, meeting, server
from workers import context
from workers.ledger import Ledger
from workers.meeting import ResolvedTranscript
from workers.salesforce import stage

__all__ = ["ca_dir", "server"]

VTT = (
    "WEBVTT\n\n"
    + cue(0, "Alice Adams", "How does our offer compare with Rival?")
    + cue(2, "Carol Diaz", "Rival gave us a discount, and GLOBEX too. The rivalry is fierce.")
    + cue(4, "Alice Adams", "We can match the discount.")
)
TRACKERS = (("competitors", ("Rival", "Globex")), ("pricing", ("discount",)))


def recorded() -> stage.ResolvedMeeting:
    return dataclasses.replace(meeting("m-mentions"), transcripts=(ResolvedTranscript("t", VTT),))


def rows(server: Server) -> list[dict[str, Any]]:
    return server.dump().get("Teams_Meeting_Mention__c", [])


def meeting_row(server: Server) -> dict[str, Any]:
    (row,) = [r for r in server.dump()["Teams_Meeting__c"] if r["Meeting_Key__c"] == "m-mentions"]
    return row


class TestMentionsWritten:
    """Each mention a record under its meeting, with tracker, phrase, speaker and snippet."""

    def test_written_in_two_calls(self, server: Server) -> None:
        conn, m = server.connection(), recorded()
        start = server.calls()
        done = stage.write_all(conn, m, TRACKERS, {})
        assert server.calls() - start == 2
        found = sorted(
            (
                r["Tracker__c"],
                r["Phrase__c"],
                r["Speaker__c"],
                r["Is_External_Speaker__c"],
                r["Offset_Seconds__c"],
            )
            for r in rows(server)
        )
        assert found == [
            ("competitors", "Globex", "Carol Diaz", True, 2.0),
            ("competitors", "Rival", "Alice Adams", False, 0.0),
            ("competitors", "Rival", "Carol Diaz", True, 2.0),  # not "rivalry"
            ("pricing", "discount", "Alice Adams", False, 4.0),
            ("pricing", "discount", "Carol Diaz", True, 2.0),
        ]  # fmt: skip
        assert {r["Meeting__c"] for r in rows(server)} == {done.ids["meeting"]}
        assert meeting_row(server)["Mention_Count__c"] == 5
        assert sorted(done.mentions.values()) == sorted(r["Id"] for r in rows(server))
        assert all(len(r["Snippet__c"]) <= 255 for r in rows(server))

    def test_replay_and_tracker_removed(self, server: Server) -> None:
        conn, m = server.connection(), recorded()
        first = stage.write_all(conn, m, TRACKERS, {})
        start = server.calls()
        again = stage.write_all(conn, m, TRACKERS, first.mentions)
        assert server.calls() - start == 2
        assert again.mentions == first.mentions and len(rows(server)) == 5
        start = server.calls()
        fewer = stage.write_all(conn, m, TRACKERS[:1], again.mentions)
        assert server.calls() - start == 2  # the deletion rides in the same write
        assert sorted(r["Tracker__c"] for r in rows(server)) == ["competitors"] * 3
        assert len(fewer.mentions) == 3 and meeting_row(server)["Mention_Count__c"] == 3
        none = stage.write_all(conn, m, (), fewer.mentions)
        assert rows(server) == [] and none.mentions == {}
        assert meeting_row(server)["Mention_Count__c"] == 0

    def test_at_most_200_with_the_true_count(self, server: Server) -> None:
        many = "WEBVTT\n\n" + "".join(cue(i, "Carol Diaz", "Rival and Rival") for i in range(150))
        m = dataclasses.replace(recorded(), transcripts=(ResolvedTranscript("t", many),))
        done = stage.write_all(server.connection(), m, TRACKERS, {})
        assert len(rows(server)) == 200 == len(done.mentions)
        assert meeting_row(server)["Mention_Count__c"] == 300


class TestLedgerForgot:
    """When the ledger does not know what an earlier write left (its Redis was lost), the
    mentions are read from Salesforce: one more call, only for a meeting that has some."""

    def test_tracker_removed_after_the_ledger_was_lost(self, server: Server) -> None:
        conn, m = server.connection(), recorded()
        first = stage.write_all(conn, m, TRACKERS, {})
        start = server.calls()
        fewer = stage.write_all(conn, m, TRACKERS[:1], None)
        assert server.calls() - start == 3  # look-ups, the mentions' query, the write
        assert sorted(r["Tracker__c"] for r in rows(server)) == ["competitors"] * 3
        # The mentions kept are the same records, not new ones.
        assert len(fewer.mentions) == 3 and fewer.mentions.items() <= first.mentions.items()
        assert sorted(fewer.mentions.values()) == sorted(r["Id"] for r in rows(server))
        assert meeting_row(server)["Mention_Count__c"] == 3

    def test_new_meeting_costs_nothing_more(self, server: Server) -> None:
        conn = server.connection()
        start = server.calls()
        done = stage.write_all(conn, recorded(), TRACKERS, None)
        assert server.calls() - start == 2 and len(done.mentions) == 5 == len(rows(server))

    def test_meeting_without_mentions_costs_nothing_more(self, server: Server) -> None:
        conn, m = server.connection(), recorded()
        stage.write_all(conn, m, (), {})
        start = server.calls()
        stage.write_all(conn, m, TRACKERS, None)
        assert server.calls() - start == 2 and len(rows(server)) == 5


class TestOrgWithoutMentions:
    """An org deployed before trackers existed still gets its meeting, without mentions."""

    def test_left_out(self, ca_dir: Path, tmp_path: Path) -> None:
        project = tmp_path / "salesforce"
        shutil.copytree(DEFAULT_DIR, project)
        objects = project / "force-app" / "main" / "default" / "objects"
        shutil.rmtree(objects / "Teams_Meeting_Mention__c")
        (objects / "Teams_Meeting__c" / "fields" / "Mention_Count__c.field-meta.xml").unlink()
        with Server(Config(metadata_dir=project), ca_dir) as srv:
            conn = srv.connection()
            assert conn.schema.objects == frozenset()
            done = stage.write_all(conn, recorded(), TRACKERS, {})
            assert done.mentions == {} and "Teams_Meeting_Mention__c" not in srv.dump()
            assert "Mention_Count__c" not in meeting_row(srv)

    def test_without_the_count_the_row_is_not_read(self, ca_dir: Path, tmp_path: Path) -> None:
        """Mentions deployed but not Mention_Count__c: the meeting row's read would be refused
        (INVALID_FIELD), so it is not made, and the write goes through as before."""
        project = tmp_path / "salesforce"
        shutil.copytree(DEFAULT_DIR, project)
        fields = project / "force-app" / "main" / "default" / "objects" / "Teams_Meeting__c"
        (fields / "fields" / "Mention_Count__c.field-meta.xml").unlink()
        with Server(Config(metadata_dir=project), ca_dir) as srv:
            conn = srv.connection()
            assert conn.schema.objects == {"Teams_Meeting_Mention__c"}
            stage.write_all(conn, recorded(), TRACKERS, {})
            start = srv.calls()
            done = stage.write_all(conn, recorded(), TRACKERS, None)
            assert srv.calls() - start == 2 and len(done.mentions) == 5 == len(rows(srv))


class TestPushRemembers:
    """`push` reads the trackers from POLICY_FILE and keeps the mentions' ids in the ledger."""

    def test_policy_file_change(
        self, server: Server, redis_conn: redis.Redis, tmp_path: Path
    ) -> None:
        policy = tmp_path / "policy.toml"
        policy.write_text('[trackers]\ncompetitors = ["Rival"]\npricing = ["discount"]\n')
        settings = server.settings(policy_file=policy)
        context.install(context.WorkerContext(settings, redis_conn))
        try:
            stage.push(recorded())
            assert len(rows(server)) == 4
            policy.write_text('[trackers]\ncompetitors = ["Rival"]\n')
            start = server.calls()
            stage.push(recorded())
            assert server.calls() - start == 2
            assert [r["Tracker__c"] for r in rows(server)] == ["competitors"] * 2
            kept = Ledger(redis_conn).meeting("m-mentions")["mention_ids"]
            assert sorted(r["Id"] for r in rows(server)) == sorted(json.loads(kept).values())
            # Redis is lost; the tracker goes too: its mentions still go from Salesforce.
            redis_conn.flushdb()
            policy.write_text('[trackers]\npricing = ["discount"]\n')
            stage.push(recorded())
            assert [r["Tracker__c"] for r in rows(server)] == ["pricing"] * 2
            kept = Ledger(redis_conn).meeting("m-mentions")["mention_ids"]
            assert sorted(r["Id"] for r in rows(server)) == sorted(json.loads(kept).values())
        finally:
            context.reset()
