"""From a notification to a meeting: ids, times, organizer and who joined, from Graph's JSON."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core import times
from policy import Participant
from workers import participants

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def day(start: datetime | None) -> str:
    """The UTC day a meeting started: what tells apart the occurrences of a recurring series,
    which share one online meeting id and join link."""
    return start.astimezone(UTC).date().isoformat() if start is not None else ""


def occurrence(value: str | None, day_: str) -> str | None:
    """An online meeting id or join link scoped to one day's occurrence (for aliases)."""
    return f"{value}|{day_}" if value else None


def online_meeting_key(online_meeting_id: str, day_: str = "") -> str:
    """The meeting key for an occurrence of an online meeting: stable, short and safe in job
    ids and Salesforce external ids."""
    seed = f"{online_meeting_id}|{day_}" if day_ else online_meeting_id
    return "om-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def call_record_key(call_record_id: str) -> str:
    """The meeting key for a meeting the callRecord alone ruled out (no meeting lookup)."""
    return "cr-" + call_record_id.lower()


def organizer_from_meeting_id(online_meeting_id: str) -> str | None:
    """The organizer's directory id inside an online meeting id (`1*{organizer}*0**19:…`).

    Graph does not document the format: used only when neither the resource path nor the
    decrypted data names the organizer (tenant-wide basic subscriptions).
    """
    try:
        padded = online_meeting_id + "=" * (-len(online_meeting_id) % 4)
        text = base64.b64decode(padded.replace("-", "+").replace("_", "/")).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = text.split("*")
    if len(parts) > 1 and _GUID.fullmatch(parts[1]):
        return parts[1].lower()
    return None


@dataclass(frozen=True)
class CallRecordFacts:
    """What one callRecord request tells: enough to rule a meeting out, or to find it."""

    call_record_id: str
    join_web_url: str | None
    start: datetime | None
    end: datetime | None
    organizer: Participant | None
    joined: tuple[Participant, ...] = field(default_factory=tuple)
    version: str = ""

    @property
    def organizer_id(self) -> str | None:
        return self.organizer.directory_id if self.organizer else None


def from_call_record(record: Mapping[str, Any]) -> CallRecordFacts:
    return CallRecordFacts(
        call_record_id=str(record.get("id") or "").lower(),
        join_web_url=record.get("joinWebUrl") or None,
        start=times.parse(record.get("startDateTime")),
        end=times.parse(record.get("endDateTime")),
        organizer=participants.organizer(record),
        joined=tuple(participants.from_call_record(record)),
        version=str(record.get("version") or ""),
    )


def meeting_organizer(meeting: Mapping[str, Any], organizer_id: str) -> Participant:
    """The organizer as the online meeting names them (identity and UPN)."""
    info = (meeting.get("participants") or {}).get("organizer") or {}
    person = participants.from_identity(info.get("identity"), role="organizer")
    upn = info.get("upn") if isinstance(info.get("upn"), str) else None
    if person is None or not person.directory_id:
        person = Participant(directory_id=organizer_id, role="organizer")
    if upn and not person.call_record_upn:
        person = Participant(
            display_name=person.display_name,
            directory_id=person.directory_id,
            tenant_id=person.tenant_id,
            attendee_upn=upn,
            role="organizer",
        )
    return person


def attendance_times(
    attendance: Mapping[str, Any] | None,
) -> tuple[datetime | None, datetime | None]:
    """The actual start and end of the session the attendance report covers."""
    if not attendance:
        return None, None
    return (
        times.parse(attendance.get("meetingStartDateTime")),
        times.parse(attendance.get("meetingEndDateTime")),
    )
