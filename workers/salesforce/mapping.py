"""The Salesforce records of one meeting (DESIGN §6): keys, fields and talk-time figures; pure."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from workers import insights
from workers.meeting import ResolvedMeeting, ResolvedTranscript
from workers.salesforce.matching import PersonMatch, Related
from workers.salesforce.records import (
    KEY_LIMIT,
    MEETING_KEY,
    PARTICIPANT,
    PARTICIPANT_KEY,
    meeting_external_key,
    participant_key,
    transcript_key,
)
from workers.vtt import Transcript

NAME_LIMIT = 80  # a custom object's text Name
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
EMAIL_LIMIT = 80  # Salesforce Email fields
URL_LIMIT = 4096  # Recording_Url__c


def combined(transcripts: Sequence[Transcript]) -> Transcript:
    """The cues of all of a meeting's transcripts, in the order made: what its insights
    (talk time, questions) are computed from."""
    language = next((t.language for t in transcripts if t.language), None)
    return Transcript(cues=tuple(c for t in transcripts for c in t.cues), language=language)


def sf_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as Salesforce writes datetimes."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def email_field(address: str | None) -> str | None:
    """`address` when Salesforce would take it in an Email field, else None (a value it
    rejects would fail the whole write)."""
    if address and len(address) <= EMAIL_LIMIT and _EMAIL.fullmatch(address):
        return address
    return None


def _number(value: float | None, digits: int) -> float | None:
    """`value` when it fits a Number field with `digits` digits before the point, else None:
    Salesforce rejects a larger one, and with it the whole write (offsets in a hostile
    transcript may run to years)."""
    return value if value is not None and abs(value) < 10**digits else None


def _text(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


def talk_seconds(meeting: ResolvedMeeting, transcript: Transcript) -> dict[str, float]:
    """Seconds spoken per participant key; transcript speakers are matched by display name
    (as the insights match them)."""
    by_name: dict[str, str] = {}
    for person in meeting.participants:
        by_name.setdefault(insights.fold(person.name), person.key)
    out = {person.key: 0.0 for person in meeting.participants}
    for speaker, seconds in transcript.talk_seconds().items():
        key = by_name.get(insights.fold(speaker))
        if key is not None:
            out[key] += seconds
    return out


def internal_talk_ratio(meeting: ResolvedMeeting, talk: dict[str, float]) -> float | None:
    """Internal share of the time spoken by internal and external people, in percent."""
    internal = sum(talk.get(p.key, 0.0) for p in meeting.participants if p.kind == "internal")
    external = sum(talk.get(p.key, 0.0) for p in meeting.participants if p.kind == "external")
    if internal + external <= 0:
        return None
    return round(100.0 * internal / (internal + external), 2)


def meeting_record(
    meeting: ResolvedMeeting,
    transcript: Transcript,
    talk: dict[str, float],
    related: Related,
    found: insights.Insights | None = None,
) -> dict[str, object]:
    """Fields of Teams_Meeting__c (the key goes in the URL); related ids only when found.

    `transcript` holds the cues of all the meeting's transcripts; `found`, the insights
    computed from them one transcript at a time (computed from `transcript` when absent).
    """
    found = found or insights.compute(meeting, [transcript])
    record: dict[str, object] = {
        "Name": (meeting.subject.strip() or "Teams meeting")[:NAME_LIMIT],
        "Online_Meeting_Id__c": _text(meeting.online_meeting_id, KEY_LIMIT),
        "Call_Record_Id__c": _text(meeting.call_record_id, KEY_LIMIT),
        "Start__c": sf_datetime(meeting.start),
        "End__c": sf_datetime(meeting.end),
        "Duration_Seconds__c": max(0, round((meeting.end - meeting.start).total_seconds())),
        "Organizer_Email__c": email_field(meeting.organizer_email),
        "Eligibility_Reason__c": meeting.reason[:80],
        # A cut link would lead nowhere: one too long for the field is left out.
        "Recording_Url__c": (
            meeting.recording_url if len(meeting.recording_url or "") <= URL_LIMIT else None
        ),
        "Internal_Talk_Ratio__c": internal_talk_ratio(meeting, talk),
        "Question_Count__c": transcript.question_count(),
        "Speaker_Count__c": _number(found.speaker_count, 4),
        "Longest_Monologue_Seconds__c": _number(found.longest_monologue_s, 8),
        "Longest_Customer_Story_Seconds__c": _number(found.longest_customer_story_s, 8),
        "Interactivity__c": _number(found.interactivity, 6),
        "Patience_Seconds__c": _number(found.patience_s, 6),
        "Next_Steps__c": found.next_steps,
    }
    if related.account_id:
        record["Related_Account__c"] = related.account_id
    if related.opportunity_id:
        record["Related_Opportunity__c"] = related.opportunity_id
    return record


def participant_records(
    meeting: ResolvedMeeting,
    talk: dict[str, float],
    matches: dict[str, PersonMatch],
) -> list[dict[str, object]]:
    """Teams_Meeting_Participant__c rows for a collection upsert, each naming its meeting by
    external id (a reparentable master-detail, so an update may name it again)."""
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for person in meeting.participants:
        key = participant_key(meeting, person)
        if key in seen:
            continue  # a key twice in one collection fails the whole collection
        seen.add(key)
        match = matches.get((person.email or "").casefold(), PersonMatch())
        row: dict[str, object] = {
            "attributes": {"type": PARTICIPANT},
            PARTICIPANT_KEY: key,
            "Name": (person.name.strip() or person.email or person.phone or "Participant")[
                :NAME_LIMIT
            ],
            "Email__c": email_field(person.email),
            "Role__c": person.role[:40],
            "Is_External__c": person.kind == "external",
            "Contact__c": match.contact_id,
            "Lead__c": match.lead_id,
            "User__c": match.user_id,
            "Talk_Time_Seconds__c": round(talk.get(person.key, 0.0)),
            "Meeting__r": {MEETING_KEY: meeting_external_key(meeting)},
        }
        rows.append(row)
    return rows


def transcript_record(
    meeting: ResolvedMeeting, transcript: Transcript, index: int = 0
) -> tuple[dict[str, object], bool]:
    """Fields of the meeting's `index`-th Teams_Transcript__c and whether its text had to be
    truncated; with several, the Name says which (`Transcript 2/3: …`)."""
    text, truncated = transcript.text_for_salesforce()
    count = len(meeting.transcripts)
    label = "Transcript: " if count <= 1 else f"Transcript {index + 1}/{count}: "
    record: dict[str, object] = {
        "Name": (label + (meeting.subject.strip() or "Teams meeting"))[:NAME_LIMIT],
        "Text__c": text,
        "Language__c": (transcript.language or "")[:20] or None,
        "Is_Truncated__c": truncated,
        "Cue_Count__c": transcript.cue_count,
        "Meeting__r": {MEETING_KEY: meeting_external_key(meeting)},
    }
    return record, truncated


def transcript_file(
    meeting: ResolvedMeeting, transcript: ResolvedTranscript, meeting_ref: str
) -> dict[str, object]:
    """A ContentVersion holding a transcript's full WebVTT, published on `meeting_ref`."""
    stem = transcript_key(meeting, transcript).replace("sha256:", "")[:40]
    return {
        "Title": ("Transcript: " + (meeting.subject.strip() or "Teams meeting"))[:255],
        "PathOnClient": f"teams-transcript-{stem}.vtt",
        "VersionData": base64.b64encode(transcript.vtt.encode()).decode(),
        "FirstPublishLocationId": meeting_ref,
    }
