"""The policy's values: participants and meetings in, a decision with its reason out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Why a meeting is or is not eligible; the values are the public reason codes (§4)."""

    TOO_SHORT = "too_short"
    RECORDER_NOT_ECI_USER = "recorder_not_eci_user"
    EXCLUDED_PARTICIPANT = "excluded_participant"
    EXTERNAL_PARTICIPANTS = "external_participants"
    SOLO_ECI_USER = "solo_eci_user"
    NO_EXTERNAL_PARTICIPANTS = "no_external_participants"


ELIGIBLE_REASONS = frozenset({Reason.EXTERNAL_PARTICIPANTS, Reason.SOLO_ECI_USER})


@dataclass(frozen=True)
class Participant:
    """What Graph told us about one person who joined (never calendar invitations).

    The caller joins the sources before building it: `attendance_email` from the attendance
    report, `call_record_upn` from callRecords `participants_v2`, and `attendee_upn` from the
    onlineMeeting's `participants.attendees[].upn` whose identity has the same directory id.
    Empty strings count as absent. For an anonymous guest, passing the callRecord guest
    identity id as `directory_id` keeps two guests with the same display name distinct.
    """

    display_name: str = ""
    directory_id: str | None = None
    tenant_id: str | None = None
    attendance_email: str | None = None
    call_record_upn: str | None = None
    attendee_upn: str | None = None
    phone: str | None = None
    is_guest: bool = False
    role: str = "attendee"

    def label(self) -> str:
        """A short human label: the first known of address, phone, display name, id."""
        for value in (self.attendance_email, self.call_record_upn, self.attendee_upn):
            if value and value.strip():
                return value.strip()
        return self.phone or self.display_name or self.directory_id or "(unknown)"


@dataclass(frozen=True)
class Meeting:
    """A meeting as the policy sees it; `participants` should include the organizer."""

    organizer: Participant
    participants: tuple[Participant, ...]
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError("meeting start and end must both be timezone-aware or both naive")

    @property
    def duration_seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Decision:
    """The outcome of the policy for one meeting, with what is needed to explain it."""

    eligible: bool
    reason: Reason
    organizer: Participant
    internal: tuple[Participant, ...] = ()
    external: tuple[Participant, ...] = ()
    unidentified: tuple[Participant, ...] = ()
    duration_seconds: float = 0.0
    excluded_participant: Participant | None = None
    excluded_by: str | None = None  # the entry of `excluded` that matched
    unidentified_counted_as_external: bool = False

    def explain(self) -> str:
        """One sentence saying why, for logs, the ledger and `ingest explain`."""
        verdict = "eligible" if self.eligible else "not eligible"
        why = {
            Reason.TOO_SHORT: f"it lasted {self.duration_seconds:g} s, under the minimum",
            Reason.RECORDER_NOT_ECI_USER: (
                f"the organizer {self.organizer.label()} is not an ECI user"
            ),
            Reason.EXCLUDED_PARTICIPANT: (
                f"participant {self._excluded_label()} matches excluded entry {self.excluded_by}"
            ),
            Reason.EXTERNAL_PARTICIPANTS: f"external: {self._labels(self._counted_external())}",
            Reason.SOLO_ECI_USER: "the organizer is the only participant",
            Reason.NO_EXTERNAL_PARTICIPANTS: "no participant is external",
        }[self.reason]
        return f"{verdict} ({self.reason}): {why}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary with participant labels, for the ledger."""
        return {
            "eligible": self.eligible,
            "reason": str(self.reason),
            "explanation": self.explain(),
            "organizer": self.organizer.label(),
            "internal": [p.label() for p in self.internal],
            "external": [p.label() for p in self.external],
            "unidentified": [p.label() for p in self.unidentified],
            "duration_seconds": self.duration_seconds,
            "excluded_participant": (
                self.excluded_participant.label() if self.excluded_participant else None
            ),
            "excluded_by": self.excluded_by,
            "unidentified_counted_as_external": self.unidentified_counted_as_external,
        }

    def _counted_external(self) -> tuple[Participant, ...]:
        if self.unidentified_counted_as_external:
            return self.external + self.unidentified
        return self.external

    def _excluded_label(self) -> str:
        return self.excluded_participant.label() if self.excluded_participant else "?"

    @staticmethod
    def _labels(participants: tuple[Participant, ...]) -> str:
        return ", ".join(p.label() for p in participants)
