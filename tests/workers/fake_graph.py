"""A fake Graph for pipeline unit tests: documented JSON shapes, request counts, scripted faults."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.exceptions import UpstreamPermanent

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "33333333-3333-3333-3333-333333333333"
ALICE = "aaaaaaaa-0000-0000-0000-000000000001"  # ECI user, contoso.com
BOB = "bbbbbbbb-0000-0000-0000-000000000002"  # not an ECI user
CAROL = "cccccccc-0000-0000-0000-000000000003"  # fabrikam.com, another tenant
VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:03.000\n<v Alice Adams>Hello Carol.</v>\n"


def user(uid: str, name: str, upn: str | None, tenant: str = TENANT) -> dict[str, Any]:
    u: dict[str, Any] = {"id": uid, "displayName": name, "tenantId": tenant}
    if upn:
        u["userPrincipalName"] = upn
    return {"user": u}


@dataclass
class FakeMeeting:
    key: str
    organizer_id: str = ALICE
    organizer_upn: str = "alice@contoso.com"
    start: str = "2026-11-20T15:00:00Z"
    end: str = "2026-11-20T15:30:00Z"
    people: list[dict[str, Any]] = field(default_factory=list)  # participants_v2 identities
    emails: dict[str, str] = field(default_factory=dict)  # directory id -> attendance e-mail
    transcript: str | None = VTT
    more: tuple[str, ...] = ()  # further transcripts, made after the first (a minute apart)
    no_call_record: bool = False  # the callRecord is not there yet (404)
    transcript_404s: int = 0  # content answers 404 this many times first
    listed_after: int = 0  # the transcript list is empty this many times first
    series: str | None = None  # occurrences of one recurring series share meeting and link
    report: bool = True  # whether an attendance report exists

    @property
    def call_record_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "cr:" + self.key))

    @property
    def online_meeting_id(self) -> str:
        raw = f"1*{self.organizer_id}*0**19:meeting_{self.series or self.key}@thread.v2"
        return base64.b64encode(raw.encode()).decode()

    @property
    def transcript_id(self) -> str:
        return base64.b64encode(f"1##0##{self.key}".encode()).decode()

    @property
    def texts(self) -> list[tuple[str, str]]:
        """(transcript id, WebVTT) of each transcript, in the order made."""
        if self.transcript is None:
            return []
        more = [(base64.b64encode(f"1##{i}##{self.key}".encode()).decode(), text)
                for i, text in enumerate(self.more, start=1)]  # fmt: skip
        return [(self.transcript_id, self.transcript), *more]

    @property
    def join_web_url(self) -> str:
        thread = self.series or self.key
        return f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0"


class FakeGraph:
    """Implements workers.pipeline.GraphReader over FakeMeetings; counts every request."""

    def __init__(self, *meetings: FakeMeeting, domains: tuple[str, ...] = ("contoso.com",)):
        self.meetings = {m.key: m for m in meetings}
        self.requests: Counter[str] = Counter()
        self.domains = list(domains)
        self.forbidden: set[str] = set()
        self.served: Counter[str] = Counter()  # transcript contents actually returned

    def _count(self, route: str) -> None:
        self.requests[route] += 1
        if route in self.forbidden:
            raise UpstreamPermanent(f"Graph 403 Forbidden while {route}. Access denied: consent")

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def _by(self, attr: str, value: str) -> FakeMeeting | None:
        return next((m for m in self.meetings.values() if getattr(m, attr) == value), None)

    def call_record(self, call_record_id: str) -> dict[str, Any] | None:
        self._count("callRecord")
        m = self._by("call_record_id", call_record_id)
        if m is None or m.no_call_record:
            return None
        organizer = user(m.organizer_id, "Organizer", None)
        return {
            "id": m.call_record_id, "version": 1, "type": "groupCall",
            "startDateTime": m.start, "endDateTime": m.end, "joinWebUrl": m.join_web_url,
            "organizer_v2": {"id": m.organizer_id, "identity": organizer},
            "participants_v2": [{"id": m.organizer_id,
                                 "identity": user(m.organizer_id, "Org", m.organizer_upn)}]
            + [{"id": str(i), "identity": p} for i, p in enumerate(m.people)],
        }  # fmt: skip

    def _meeting_json(self, m: FakeMeeting) -> dict[str, Any]:
        return {
            "id": m.online_meeting_id, "subject": f"Meeting {m.key}", "joinWebUrl": m.join_web_url,
            "startDateTime": m.start, "endDateTime": m.end,
            "participants": {"organizer": {"upn": m.organizer_upn,
                                           "identity": user(m.organizer_id, "Org", None)},
                             "attendees": []},
        }  # fmt: skip

    def meeting_by_join_url(self, organizer_id: str, url: str) -> dict[str, Any] | None:
        self._count("meetingByJoinUrl")
        m = self._by("join_web_url", url)
        return self._meeting_json(m) if m else None

    def meeting(self, organizer_id: str, meeting_id: str) -> dict[str, Any] | None:
        self._count("meeting")
        m = self._by("online_meeting_id", meeting_id)
        return self._meeting_json(m) if m else None

    def attendance(
        self, organizer_id: str, meeting_id: str, start: datetime | None, end: datetime | None
    ) -> dict[str, Any] | None:
        self.requests["attendanceReports"] += 1
        self._count("attendanceReport")
        m = self._occurrence(meeting_id, start)
        if m is None or not m.report:
            return None
        records = [
            {
                "emailAddress": m.organizer_upn,
                "role": "Organizer",
                "identity": {"id": m.organizer_id, "displayName": "Org", "tenantId": None},
            }
        ]
        for person in m.people:
            u = person.get("user") or {}
            if u.get("id"):
                records.append({"emailAddress": m.emails.get(u["id"], ""), "role": "Attendee",
                                "identity": {"id": u["id"], "displayName": u.get("displayName"),
                                             "tenantId": None}})  # fmt: skip
        return {"id": "r1", "meetingStartDateTime": m.start, "meetingEndDateTime": m.end,
                "attendanceRecords": records}  # fmt: skip

    def _occurrence(self, meeting_id: str, start: datetime | None) -> FakeMeeting | None:
        found = [m for m in self.meetings.values() if m.online_meeting_id == meeting_id]
        for m in found:
            if start is not None and m.start[:10] == start.strftime("%Y-%m-%d"):
                return m
        return found[-1] if found else None

    def transcripts(self, organizer_id: str, meeting_id: str) -> list[dict[str, Any]]:
        """Every occurrence's transcripts, newest first as Graph lists them."""
        self._count("transcripts")
        out = []
        for m in self.meetings.values():
            if m.online_meeting_id != meeting_id or m.transcript is None:
                continue
            if m.listed_after > 0:
                m.listed_after -= 1
                continue
            start = datetime.fromisoformat(m.start.replace("Z", "+00:00"))
            for i, (tid, _) in enumerate(m.texts):
                made = (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
                out.append({"id": tid, "meetingId": m.online_meeting_id,
                            "callId": m.call_record_id, "createdDateTime": made,
                            "endDateTime": m.end})  # fmt: skip
        return sorted(out, key=lambda t: str(t["createdDateTime"]), reverse=True)

    def transcript_content(
        self, organizer_id: str, meeting_id: str, transcript_id: str
    ) -> str | None:
        self._count("transcriptContent")
        found = [(m, text) for m in self.meetings.values() for tid, text in m.texts
                 if tid == transcript_id]  # fmt: skip
        if not found:
            return None
        m, text = found[0]
        if m.transcript_404s > 0:
            m.transcript_404s -= 1
            return None
        self.served[m.key] += 1
        self.served[transcript_id] += 1
        return text

    def verified_domains(self) -> list[str]:
        self._count("organization")
        return self.domains

    def recording_files(self, organizer_id: str) -> list[dict[str, Any]] | None:
        """None, without a request: no organizer here connected (the app token has no
        Files.Read)."""
        return None
