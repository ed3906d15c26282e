"""The demo's readable summary says why each failed meeting failed, as `ingest explain` does."""

from __future__ import annotations

from emulators.scenario import load
from ingest.demo.report import document, table
from ingest.demo.runner import DemoRun, _policy_toml
from policy.config import parse_toml


def test_failed_meetings_show_their_fix() -> None:
    scenario = load()
    first, second = scenario.meetings[0].id, scenario.meetings[1].id
    fix = "No Teams application access policy: ... Grant-CsApplicationAccessPolicy ..."
    run = DemoRun(
        meetings={
            first: {"decision": "eligible", "reason": "external_participants",
                    "outcome": "pushed", "salesforce_ids": {"meeting": "a01"}},
            second: {"outcome": "failed", "outcome_reason": fix},
        },
        settled=True,
    )  # fmt: skip
    doc = document(scenario, run)
    text = table(scenario, run, doc)
    assert f"{second} failed: {fix}" in text.splitlines()
    assert f"{first} failed" not in text


def test_insights_read_from_salesforce_and_summarised() -> None:
    """`insights` comes from the meeting's Salesforce record and its mentions; the table shows
    one line of it per pushed meeting."""
    scenario = load()
    first, second = scenario.meetings[0].id, scenario.meetings[1].id
    meeting = {
        "Id": "a01A", "Speaker_Count__c": 3.0, "Internal_Talk_Ratio__c": 55.67,
        "Question_Count__c": 1.0, "Mention_Count__c": 3.0, "Recording_Url__c": "https://x/r.mp4",
    }  # fmt: skip
    mentions = [
        {"Meeting__c": "a01A", "Tracker__c": "pricing"},
        {"Meeting__c": "a01A", "Tracker__c": "security"},
        {"Meeting__c": "a01A", "Tracker__c": "pricing"},
        {"Meeting__c": "a01B", "Tracker__c": "pricing"},
    ]
    run = DemoRun(
        meetings={
            first: {"decision": "eligible", "reason": "external_participants",
                    "outcome": "pushed", "salesforce_ids": {"meeting": "a01A"}},
            second: {"decision": "ineligible", "reason": "too_short", "outcome": "skipped"},
        },
        salesforce_dump={"Teams_Meeting__c": [meeting], "Teams_Meeting_Mention__c": mentions},
        settled=True,
    )  # fmt: skip
    doc = document(scenario, run)
    found = doc["meetings"][0]["insights"]
    assert found["speaker_count"] == 3 and isinstance(found["speaker_count"], int)
    assert found["internal_talk_ratio"] == 55.67
    assert found["mention_count"] == 3
    assert found["mentions"] == {"pricing": 2, "security": 1}
    assert found["recording_url"] == "https://x/r.mp4"
    assert found["patience_seconds"] is None  # absent from the record
    assert doc["meetings"][1]["insights"] is None
    line = (
        f"{first:<8} speakers 3, internal talk 56 %, questions 1, "
        "mentions 3 (pricing 2, security 1), recording linked"
    )
    assert line in table(scenario, run, doc).splitlines()
    assert scenario.meetings[0].recording  # recorded: unlinked, the line says why
    run.salesforce_dump["Teams_Meeting__c"][0]["Recording_Url__c"] = None
    text = table(scenario, run, document(scenario, run))
    assert "recording not linked (organizer not connected)" in text


def test_recording_turned_off_is_said() -> None:
    """m-014's options turned recording off: the line says its OneDrive was not listed."""
    scenario = load()
    off = next(m for m in scenario.meetings if not m.allow_recording)
    assert off.id == "m-014" and not off.recording
    run = DemoRun(
        meetings={off.id: {"decision": "eligible", "reason": "external_participants",
                           "outcome": "pushed", "salesforce_ids": {"meeting": "a01C"}}},
        salesforce_dump={"Teams_Meeting__c": [{"Id": "a01C", "Speaker_Count__c": 4.0}]},
        settled=True,
    )  # fmt: skip
    text = table(scenario, run, document(scenario, run))
    (line,) = [x for x in text.splitlines() if x.startswith(f"{off.id:<8} speakers")]
    assert line.endswith("recording turned off (OneDrive not listed)")


def test_scenario_policy_becomes_the_policy_file() -> None:
    """The demo's POLICY_FILE holds the default scenario's policy, `[trackers]` a table, as
    the product reads it (DESIGN §4)."""
    policy = load().policy
    settings = parse_toml(_policy_toml(policy))
    assert settings.trackers == tuple(
        (name, tuple(phrases)) for name, phrases in policy["trackers"].items()
    )
    assert settings.excluded == tuple(policy["excluded"])
    assert settings.min_duration_seconds == policy["min_duration_seconds"]
    odd = parse_toml(_policy_toml({"trackers": {"Concurrents (FR)": ["Société Générale"]}}))
    assert odd.trackers == (("Concurrents (FR)", ("Société Générale",)),)
