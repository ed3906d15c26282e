"""The names of the product's Salesforce records (DESIGN §6): objects, external-id fields and
the keys each meeting's records get. The look-ups, the mapping and the write all name records
through here, so the stage reads one way: look-ups -> matching -> mapping -> write."""

from __future__ import annotations

import hashlib
import re

from workers.meeting import ResolvedMeeting, ResolvedParticipant, ResolvedTranscript

MEETING = "Teams_Meeting__c"
PARTICIPANT = "Teams_Meeting_Participant__c"
TRANSCRIPT = "Teams_Transcript__c"
FILE = "ContentVersion"
MENTION = "Teams_Meeting_Mention__c"
MENTION_KEY = "Mention_Key__c"
MEETING_KEY = "Meeting_Key__c"
PARTICIPANT_KEY = "Participant_Key__c"
TRANSCRIPT_KEY = "Transcript_Key__c"

KEY_LIMIT = 255  # Text(255) External ID fields
_PLAIN_KEY = re.compile(r"[A-Za-z0-9._:=-]+")  # kept as is: safe in a URL path segment


def external_key(raw: str) -> str:
    """`raw` when short and URL-safe, else a stable digest of it (Graph ids can be long)."""
    if len(raw) <= KEY_LIMIT and _PLAIN_KEY.fullmatch(raw):
        return raw
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def meeting_external_key(meeting: ResolvedMeeting) -> str:
    """The meeting's Meeting_Key__c (its external id in Salesforce)."""
    return external_key(meeting.meeting_key)


def participant_key(meeting: ResolvedMeeting, person: ResolvedParticipant) -> str:
    return external_key(f"{meeting.meeting_key}/p/{person.key}")


def transcript_key(meeting: ResolvedMeeting, transcript: ResolvedTranscript) -> str:
    """One Teams_Transcript__c per Graph transcript of the meeting."""
    return external_key(f"{meeting.meeting_key}/t/{transcript.id}")


def transcript_ref(index: int) -> str:
    """The composite referenceId of the meeting's `index`-th transcript (its file: "file…")."""
    return "transcript" if index == 0 else f"transcript{index + 1}"
