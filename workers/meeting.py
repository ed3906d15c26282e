"""What the pipeline knows of an eligible meeting when it hands it to the Salesforce stage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ResolvedParticipant:
    """One distinct person who took part, as the policy classified them."""

    key: str  # stable and distinct within the meeting: directory id, else address, phone, name
    name: str
    email: str | None
    role: str  # "organizer", "presenter" or "attendee"
    kind: str  # "internal", "external" or "unidentified"
    directory_id: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class ResolvedTranscript:
    """One of the meeting's transcripts (transcription stopped and started again makes more)."""

    id: str  # Graph's callTranscript id: the key of its Teams_Transcript__c
    vtt: str  # the WebVTT exactly as Graph returned it


@dataclass(frozen=True)
class ResolvedMeeting:
    """An eligible meeting with its transcript, ready to be written to Salesforce."""

    meeting_key: str  # the ledger's key for the meeting; stable whichever path found it
    online_meeting_id: str | None
    call_record_id: str | None
    subject: str
    start: datetime
    end: datetime
    organizer_email: str
    reason: str  # the policy's reason code (DESIGN §4)
    participants: tuple[ResolvedParticipant, ...]
    transcripts: tuple[ResolvedTranscript, ...]  # in the order they were made; at least one
    recording_url: str | None = None  # a link to the recording left on Teams, never its content
