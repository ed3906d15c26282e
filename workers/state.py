"""A meeting's ledger entry read once into a typed, frozen value (the ledger stores strings).

The pipeline reads what it has learned about a meeting — ids, times, decision, transcripts
chosen, where the transcript wait stands — from one `HGETALL`, parsed here, instead of
picking string keys out of several reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from core import times
from workers.ledger import SETTLED, Ledger
from workers.meeting import ResolvedParticipant


@dataclass(frozen=True)
class MeetingState:
    """What the ledger holds of one meeting; absent fields are None, empty or False."""

    key: str
    decision: str | None = None  # "eligible" or "ineligible" once decided
    reason: str = ""
    outcome: str | None = None
    organizer_id: str | None = None
    organizer_email: str = ""
    online_meeting_id: str | None = None
    call_record_id: str | None = None
    written_call_record_id: str | None = None
    subject: str = ""
    start: datetime | None = None
    end: datetime | None = None
    decided_at: datetime | None = None
    transcript_ids: tuple[str, ...] = ()  # chosen, in the order made; () before a choice
    transcript_wait_started: float | None = None
    next_check_at: float | None = None
    push_enqueued: bool = False
    recording_checked: bool = False  # the organizer's OneDrive was looked at (or could not be)
    recording_url: str | None = None
    recording_allowed: bool = True  # false: the meeting's options turned recording off
    participants: tuple[ResolvedParticipant, ...] = ()

    @classmethod
    def parse(cls, key: str, raw: Mapping[str, str]) -> MeetingState:
        def text(name: str) -> str | None:
            return raw.get(name) or None

        def number(name: str) -> float | None:
            value = raw.get(name)
            return float(value) if value else None

        chosen = json.loads(raw["transcript_ids"]) if raw.get("transcript_ids") else []
        people = json.loads(raw["participants"]) if raw.get("participants") else []
        return cls(
            key=key,
            decision=text("decision"),
            reason=raw.get("reason", ""),
            outcome=text("outcome"),
            organizer_id=text("organizer_id"),
            organizer_email=raw.get("organizer_email", ""),
            online_meeting_id=text("online_meeting_id"),
            call_record_id=text("call_record_id"),
            written_call_record_id=text("written_call_record_id"),
            subject=raw.get("subject", ""),
            start=times.parse(raw.get("start")),
            end=times.parse(raw.get("end")),
            decided_at=times.parse(raw.get("decided_at")),
            transcript_ids=tuple(str(t) for t in chosen),
            transcript_wait_started=number("transcript_wait_started"),
            next_check_at=number("next_check_at"),
            push_enqueued=bool(raw.get("push_enqueued_at")),
            recording_checked=bool(raw.get("recording_checked_at")),
            recording_url=text("recording_url"),
            recording_allowed=raw.get("recording_allowed") != "false",
            participants=tuple(ResolvedParticipant(**p) for p in people),
        )

    @property
    def decided(self) -> bool:
        return self.decision is not None

    @property
    def settled(self) -> bool:
        return self.outcome in SETTLED

    @property
    def needs_transcript(self) -> bool:
        """Eligible, not settled, and not yet handed to the Salesforce stage."""
        return self.decision == "eligible" and not self.settled and not self.push_enqueued


def load(ledger: Ledger, key: str) -> MeetingState:
    """The meeting's state, from one read of its ledger hash."""
    return MeetingState.parse(key, ledger.meeting(key))
