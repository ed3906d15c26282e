"""The demo's summary: a readable table, or DESIGN §7's JSON document."""

from __future__ import annotations

from typing import Any

from emulators.scenario import Scenario
from ingest.demo.runner import DemoRun

OUTCOMES = ("pushed", "skipped", "no_transcript", "failed")


def _salesforce_id(entry: dict[str, Any]) -> str | None:
    ids = entry.get("salesforce_ids") or {}
    value = ids.get("meeting") if isinstance(ids, dict) else None
    return str(value) if value else None


# Insight key in `--json` -> the Teams_Meeting__c field it is read from (DESIGN §6).
INSIGHTS = {
    "speaker_count": "Speaker_Count__c",
    "internal_talk_ratio": "Internal_Talk_Ratio__c",
    "question_count": "Question_Count__c",
    "interactivity": "Interactivity__c",
    "longest_monologue_seconds": "Longest_Monologue_Seconds__c",
    "longest_customer_story_seconds": "Longest_Customer_Story_Seconds__c",
    "patience_seconds": "Patience_Seconds__c",
    "mention_count": "Mention_Count__c",
    "recording_url": "Recording_Url__c",
}
COUNTS = ("speaker_count", "question_count", "mention_count")


def insights(dump: dict[str, Any], salesforce_id: str | None) -> dict[str, Any] | None:
    """A pushed meeting's insights as Salesforce holds them (the emulator's records), with
    its written mentions counted per tracker; None for a meeting not in Salesforce."""
    record = next(
        (r for r in dump.get("Teams_Meeting__c", []) if salesforce_id and r["Id"] == salesforce_id),
        None,
    )
    if record is None:
        return None
    out: dict[str, Any] = {key: record.get(field) for key, field in INSIGHTS.items()}
    for key in COUNTS:  # Salesforce's Number(n, 0) comes back as a JSON double
        out[key] = None if out[key] is None else int(out[key])
    by_tracker: dict[str, int] = {}
    for mention in dump.get("Teams_Meeting_Mention__c", []):
        if mention.get("Meeting__c") == salesforce_id:
            tracker = str(mention.get("Tracker__c"))
            by_tracker[tracker] = by_tracker.get(tracker, 0) + 1
    out["mentions"] = dict(sorted(by_tracker.items()))
    return out


def document(scenario: Scenario, run: DemoRun) -> dict[str, Any]:
    """The `--json` document: meetings in scenario order, counts, Graph and Salesforce use."""
    meetings = []
    counts = dict.fromkeys(OUTCOMES, 0)
    for meeting in scenario.meetings:
        entry = run.meetings.get(meeting.id, {})
        raw_outcome = entry.get("outcome")
        outcome = (
            raw_outcome if isinstance(raw_outcome, str) and raw_outcome in OUTCOMES else "failed"
        )
        counts[outcome] += 1
        decision = entry.get("decision")
        meetings.append(
            {
                "id": meeting.id,
                "decision": decision if decision in ("eligible", "ineligible") else None,
                "reason": entry.get("reason"),
                "outcome": outcome,
                "salesforce_id": _salesforce_id(entry),
                "insights": insights(run.salesforce_dump, _salesforce_id(entry)),
            }
        )
    requests = run.graph_stats.get("requests", {})
    graph_requests = sum(n for route, n in requests.items() if "/v1.0/" in route)
    doc: dict[str, Any] = {
        "meetings": meetings,
        "counts": counts,
        "graph": {
            "requests": graph_requests,
            "recording_content_downloads": run.graph_stats.get("recording_content_downloads", 0),
        },
        "salesforce": {"api_calls": run.salesforce_stats.get("api_calls", 0)},
    }
    if run.chaos:
        doc["chaos"] = chaos(run)
    return doc


def summary(found: dict[str, Any], recorded: bool, allowed: bool = True) -> str:
    """One line: speakers, internal talk ratio, questions, mentions per tracker, and the
    recording: linked, left unlinked (its organizer did not connect: no Files.Read), none, or
    turned off in the meeting's options (its OneDrive was not even listed)."""
    ratio = found["internal_talk_ratio"]
    mentions = ", ".join(f"{t} {n}" for t, n in found["mentions"].items()) or "none"
    recording = (
        "recording linked" if found["recording_url"]
        else "recording not linked (organizer not connected)" if recorded
        else "no recording" if allowed
        else "recording turned off (OneDrive not listed)"
    )  # fmt: skip
    return (
        f"speakers {found['speaker_count'] or 0}, "
        f"internal talk {'-' if ratio is None else f'{ratio:.0f} %'}, "
        f"questions {found['question_count'] or 0}, "
        f"mentions {found['mention_count'] or 0} ({mentions}), {recording}"
    )


def chaos(run: DemoRun) -> dict[str, Any]:
    """What the faults of `--chaos` did, from the emulators' own counts: proof they fired."""
    notifications = run.graph_stats.get("notifications", {})
    return {
        "graph_faults": run.graph_stats.get("faults_injected", {}),
        "salesforce_faults": run.salesforce_stats.get("faults_injected", {}),
        "duplicate_notifications": notifications.get("duplicated", 0),
        "expired_session_refusals": run.salesforce_stats.get("rejected", {}).get(
            "invalid_session", 0
        ),
        "killed_worker": run.killed,
    }


def table(scenario: Scenario, run: DemoRun, doc: dict[str, Any]) -> str:
    """A readable summary for a terminal."""
    subjects = {m.id: m.subject for m in scenario.meetings}
    width = max([len(s) for s in subjects.values()] + [7])
    lines = [
        f"{'meeting':<8} {'subject':<{width}}  {'decision':<10} {'reason':<26} {'outcome':<14} "
        "salesforce id",
        "-" * (width + 80),
    ]
    for m in doc["meetings"]:
        lines.append(
            f"{m['id']:<8} {subjects[m['id']]:<{width}}  {m['decision'] or '-':<10} "
            f"{m['reason'] or '-':<26} {m['outcome']:<14} {m['salesforce_id'] or '-'}"
        )
    lines += ["", "Insights (pushed meetings):"]
    by_id = {m.id: m for m in scenario.meetings}
    lines += [
        f"{m['id']:<8} "
        f"{summary(m['insights'], by_id[m['id']].recording, by_id[m['id']].allow_recording)}"
        for m in doc["meetings"]
        if m["insights"]
    ]
    counts = ", ".join(f"{k} {v}" for k, v in doc["counts"].items())
    lines += [
        "",
        f"{len(doc['meetings'])} meetings in {run.seconds:.0f} s: {counts}",
        f"Graph: {doc['graph']['requests']} API requests, "
        f"{doc['graph']['recording_content_downloads']} recording downloads"
        " (recordings stay on Teams)",
        f"Salesforce: {doc['salesforce']['api_calls']} API calls",
    ]
    if "chaos" in doc:
        c = doc["chaos"]
        killed = c["killed_worker"]
        lines.append(
            f"Chaos: Graph faults {c['graph_faults']}, Salesforce faults {c['salesforce_faults']}, "
            f"{c['duplicate_notifications']} duplicate notifications, "
            f"{c['expired_session_refusals']} expired-session refusals, "
            + (f"{killed['worker']} killed running {killed['job']}"
               + (" (holding a meeting lock)" if killed.get("held_meeting_lock") else "") + " "
               f"(then {killed.get('job_status', '?')})" if killed else "no worker killed")
        )  # fmt: skip
    for m in doc["meetings"]:  # what to fix: the ledger's reason (as `ingest explain` shows)
        if m["outcome"] == "failed":
            entry = run.meetings.get(m["id"], {})
            why = entry.get("outcome_reason") or entry.get("last_error") or "no outcome in time"
            lines.append(f"{m['id']} failed: {why}")
    if not run.settled:
        lines.append("NOT SETTLED: some meetings did not reach an outcome in time")
    return "\n".join(lines)
