"""`ingest demo` end to end: every outcome of the default scenario, the Salesforce records,
API economy, and the same records under chaos (DESIGN §7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.scenario import DEFAULT_PATH

INGEST = str(Path(sys.executable).parent / "ingest")
# Per meeting of emulators/scenarios/default.json: (decision, reason, outcome).
EXPECTED = {
    "m-001": ("eligible", "external_participants", "pushed"),
    "m-002": ("eligible", "external_participants", "pushed"),
    "m-003": ("ineligible", "too_short", "skipped"),
    "m-004": ("ineligible", "recorder_not_eci_user", "skipped"),
    "m-005": ("ineligible", "excluded_participant", "skipped"),
    "m-006": ("eligible", "solo_eci_user", "pushed"),
    "m-007": ("ineligible", "no_external_participants", "skipped"),
    "m-008": ("eligible", "external_participants", "no_transcript"),
    "m-009": ("eligible", "external_participants", "pushed"),
    "m-010": ("ineligible", "no_external_participants", "skipped"),
    "m-011": ("eligible", "external_participants", "pushed"),
    "m-012": ("eligible", "external_participants", "pushed"),
    "m-013": ("ineligible", "no_external_participants", "skipped"),
    "m-014": ("eligible", "external_participants", "pushed"),
    "m-015": ("ineligible", "no_external_participants", "skipped"),
    "m-016": ("eligible", "external_participants", "pushed"),
    "m-017": ("ineligible", "excluded_participant", "skipped"),
    "m-018": ("eligible", "solo_eci_user", "no_transcript"),
    "m-019": ("eligible", "external_participants", "pushed"),
    "m-020": ("ineligible", "recorder_not_eci_user", "skipped"),
}
AUDIT_FIELDS = {
    "Id",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "ContentDocumentId",
    "CreatedById",
    "LastModifiedById",
    "OwnerId",
}


# Each demo run is a whole pipeline of processes (about a minute; more on a loaded machine):
# bounded by the subprocess's own timeout below, not by the suite's per-test default.
pytestmark = pytest.mark.timeout(300)


def load_scenario() -> dict[str, Any]:
    scenario: dict[str, Any] = json.loads(DEFAULT_PATH.read_text())
    return scenario


def run_demo(tmp: Path, *flags: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    dump = tmp / "dump.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPH_", "SF_", "INGEST_", "REDIS_URL", "POLICY_"))
    }
    done = subprocess.run(
        [INGEST, "demo", "--json", "--salesforce-dump", str(dump), *flags],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), json.loads(dump.read_text()), done.stderr


@pytest.fixture(scope="module")
def plain(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, Any], dict[str, Any], str]]:
    yield run_demo(tmp_path_factory.mktemp("demo"))


def normalise(dump: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Records without ids and timestamps; references replaced by what they point at."""
    names: dict[str, str] = {}
    for obj, records in dump.items():
        for rec in records:
            key = next(
                (
                    rec[f]
                    for f in (
                        "Meeting_Key__c",
                        "Participant_Key__c",
                        "Transcript_Key__c",
                        "Mention_Key__c",
                        "Email",
                        "Title",
                        "Name",
                    )
                    if rec.get(f)
                ),
                rec["Id"],
            )
            names[rec["Id"]] = f"{obj}:{key}"
    out: dict[str, list[dict[str, Any]]] = {}
    for obj, records in dump.items():
        rows = []
        for rec in records:
            rows.append(
                {
                    k: names.get(v, v) if isinstance(v, str) else v
                    for k, v in rec.items()
                    if k not in AUDIT_FIELDS
                }
            )
        out[obj] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    return out


class TestDefaultScenario:
    """Every meeting reaches the outcome its facts call for, and Salesforce holds exactly those."""

    def test_every_meeting_settles_as_expected(self, plain: Any) -> None:
        doc, _, _ = plain
        got = {m["id"]: (m["decision"], m["reason"], m["outcome"]) for m in doc["meetings"]}
        assert got == EXPECTED
        assert doc["counts"] == {"pushed": 9, "skipped": 9, "no_transcript": 2, "failed": 0}
        reasons = {m["reason"] for m in doc["meetings"]}
        assert reasons == {
            "too_short",
            "recorder_not_eci_user",
            "excluded_participant",
            "external_participants",
            "solo_eci_user",
            "no_external_participants",
        }

    def test_salesforce_ids_only_for_pushed(self, plain: Any) -> None:
        doc, dump, _ = plain
        meeting_ids = {r["Id"] for r in dump["Teams_Meeting__c"]}
        for m in doc["meetings"]:
            if m["outcome"] == "pushed":
                assert m["salesforce_id"] in meeting_ids
            else:
                assert m["salesforce_id"] is None

    def test_recordings_stay_on_teams(self, plain: Any) -> None:
        doc, _, _ = plain
        assert doc["graph"]["recording_content_downloads"] == 0
        assert doc["graph"]["requests"] > 0

    def test_recording_linked_only_for_the_connected_organizer(self, plain: Any) -> None:
        """Alice connects through the connect flow (delegated Files.Read): her recorded m-001
        gets its OneDrive link. Ben was added by an admin: his recorded m-002 gets none, as
        do Chloe's m-009 and m-016."""
        doc, _, stderr = plain
        assert "connecting alice@contoso.com through the connect flow" in stderr
        links = {m["id"]: m["insights"]["recording_url"] for m in doc["meetings"] if m["insights"]}
        url = str(links.pop("m-001"))
        assert url.startswith("https://") and "/Recordings/Fabrikam" in url, url
        assert set(links.values()) == {None}

    def test_records_in_salesforce(self, plain: Any) -> None:
        doc, dump, _ = plain
        pushed = [m for m in doc["meetings"] if m["outcome"] == "pushed"]
        assert len(dump["Teams_Meeting__c"]) == len(pushed)
        assert len(dump["Teams_Transcript__c"]) == len(pushed) + 1  # m-019 has two
        keys = [r["Meeting_Key__c"] for r in dump["Teams_Meeting__c"]]
        assert len(set(keys)) == len(keys)
        # Every pushed meeting carries its callRecord id, m-011's too (its callRecord came
        # after the meeting was written).
        assert all(r.get("Call_Record_Id__c") for r in dump["Teams_Meeting__c"])
        by_meeting: dict[str, list[dict[str, Any]]] = {}
        for p in dump["Teams_Meeting_Participant__c"]:
            by_meeting.setdefault(p["Meeting__c"], []).append(p)
        for meeting in dump["Teams_Meeting__c"]:
            people = by_meeting[meeting["Id"]]
            assert people, meeting["Name"]
            if meeting["Eligibility_Reason__c"] == "external_participants":
                assert any(p["Is_External__c"] for p in people), meeting["Name"]

    def test_related_account_and_opportunity(self, plain: Any) -> None:
        """ECI's order on the scenario's org, where no opportunity has a contact role: open
        deals are found through the contacts' accounts and the account websites; a closed
        deal (Northwind) leaves the account alone."""
        _, dump, _ = plain
        names = {r["Id"]: r["Name"] for r in dump["Account"] + dump["Opportunity"]}
        got = {
            m["Name"]: (
                names.get(m.get("Related_Account__c") or ""),
                names.get(m.get("Related_Opportunity__c") or ""),
            )
            for m in dump["Teams_Meeting__c"]
        }
        assert got["Fabrikam renewal: pricing and terms"] == ("Fabrikam", "Fabrikam renewal 2027")
        assert got["Litware security and compliance workshop (half day)"] == (
            "Litware", "Litware security expansion"
        )  # fmt: skip
        assert got["Fourth Coffee quarterly business review"] == (
            "Fourth Coffee", "Fourth Coffee new stores"
        )  # fmt: skip
        assert got["Northwind Traders onboarding kickoff"] == ("Northwind Traders", None)
        assert got["Prep: Q4 forecast notes"] == (None, None)

    def test_two_transcripts_in_the_order_made(self, plain: Any) -> None:
        """m-019's transcription was stopped and started again: two Teams_Transcript__c, each
        with its own cues, numbered in the order they were made."""
        doc, dump, _ = plain
        sf_id = next(m["salesforce_id"] for m in doc["meetings"] if m["id"] == "m-019")
        texts = sorted(
            (t for t in dump["Teams_Transcript__c"] if t["Meeting__c"] == sf_id),
            key=lambda t: str(t["Name"]),
        )
        assert [t["Name"] for t in texts] == [
            "Transcript 1/2: Margie's Travel introduction",
            "Transcript 2/2: Margie's Travel introduction",
        ]
        assert texts[0]["Text__c"].startswith("Ben Carter: Lucia, Peter, great to meet you")
        assert texts[1]["Text__c"].startswith("Ben Carter: We're recording the transcript again")
        assert len({t["Transcript_Key__c"] for t in texts}) == 2

    def test_long_transcript_truncated_with_one_file(self, plain: Any) -> None:
        _, dump, _ = plain
        truncated = [t for t in dump["Teams_Transcript__c"] if t["Is_Truncated__c"]]
        assert len(truncated) == 1
        assert len(truncated[0]["Text__c"]) <= 131_072
        assert len(dump.get("ContentVersion", [])) == 1

    def test_at_most_two_salesforce_calls_per_pushed_meeting(self, plain: Any) -> None:
        doc, _, _ = plain
        pushed = doc["counts"]["pushed"]
        # Each worker process checks the schema once when it starts writing (one call), and
        # m-011, written before its callRecord existed, gets the callRecord id in one more.
        workers, late = 2, 1
        assert doc["salesforce"]["api_calls"] <= 2 * pushed + workers + late

    def test_insights_of_each_pushed_meeting(self, plain: Any) -> None:
        """`insights` per meeting, read from Salesforce: only for pushed meetings; the solo
        prep notes have one internal speaker and no customer story."""
        doc, _, _ = plain
        for m in doc["meetings"]:
            assert (m["insights"] is not None) == (m["outcome"] == "pushed"), m["id"]
        found = {m["id"]: m["insights"] for m in doc["meetings"] if m["insights"]}
        for mid, i in found.items():
            assert i["speaker_count"] >= 1 and 0 <= i["internal_talk_ratio"] <= 100, mid
            assert i["longest_monologue_seconds"] > 0, mid
        assert found["m-006"]["speaker_count"] == 1
        assert found["m-006"]["internal_talk_ratio"] == 100
        assert found["m-006"]["longest_customer_story_seconds"] is None
        assert found["m-001"]["speaker_count"] == 3
        assert found["m-002"]["speaker_count"] == 5

    def test_trackers_write_mentions(self, plain: Any) -> None:
        """The scenario's two trackers: whole words across the pushed meetings' transcripts,
        one Teams_Meeting_Mention__c each (all under the 200 cap), counted on the meeting."""
        doc, dump, _ = plain
        trackers = load_scenario()["policy"]["trackers"]
        assert len(trackers) == 2
        mentions = {m["id"]: m["insights"]["mentions"] for m in doc["meetings"] if m["insights"]}
        assert mentions["m-001"] == {"pricing": 4, "security": 2}  # quote, budget, three-year x2
        assert mentions["m-009"] == {"security": 171}
        assert mentions["m-011"] == mentions["m-014"] == {"pricing": 1}
        assert mentions["m-012"] == {"pricing": 2}  # "trial" twice
        assert mentions["m-002"] == mentions["m-019"] == {}
        counts = {m["id"]: m["insights"]["mention_count"] for m in doc["meetings"] if m["insights"]}
        assert counts == {mid: sum(by.values()) for mid, by in mentions.items()}
        rows = dump["Teams_Meeting_Mention__c"]
        assert len(rows) == sum(counts.values())
        assert len({r["Mention_Key__c"] for r in rows}) == len(rows)
        for r in rows:
            assert r["Phrase__c"] in trackers[r["Tracker__c"]], r
            assert r["Phrase__c"].casefold() in r["Snippet__c"].casefold(), r
            assert len(r["Snippet__c"]) <= 255

    def test_progress_on_stderr(self, plain: Any) -> None:
        _, _, stderr = plain
        assert "meetings settled" in stderr


class TestChaos:
    """Under faults, duplicates, an expired session and a killed worker: the same records."""

    def test_same_records(self, plain: Any, tmp_path: Path) -> None:
        doc, dump, _ = plain
        chaos_doc, chaos_dump, stderr = run_demo(tmp_path, "--chaos")
        # Each fault really fired (the emulators' own counts), and the worker killed was
        # running a job at that moment, which another worker then finished.
        chaos = chaos_doc["chaos"]
        assert chaos["graph_faults"].get("429", 0) > 0, chaos
        assert chaos["graph_faults"].get("503", 0) > 0, chaos
        assert chaos["salesforce_faults"].get("503", 0) > 0, chaos
        assert chaos["duplicate_notifications"] > 0, chaos
        assert chaos["expired_session_refusals"] > 0, chaos
        killed = chaos["killed_worker"]
        assert killed["worker"].startswith("worker") and killed["job"], chaos
        assert f"killing {killed['worker']} mid-job ({killed['job']})" in stderr
        assert killed["job_status"] == "finished", chaos
        # Killed while holding a meeting lock (the worst moment): its meeting still settled.
        assert killed["held_meeting_lock"] is True, chaos
        assert "holding a meeting lock" in stderr
        assert "chaos" not in doc  # only a chaos run reports it
        assert [(m["id"], m["outcome"]) for m in chaos_doc["meetings"]] == [
            (m["id"], m["outcome"]) for m in doc["meetings"]
        ]
        assert normalise(chaos_dump) == normalise(dump)
