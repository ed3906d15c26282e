"""The emulated tenant's runtime state: which meetings were played when, and stable Graph ids."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import quote

from emulators.scenario import Meeting, Participant, Scenario, User


def _guid(kind: str, key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{key}"))


def _b64(text: str) -> str:
    # URL-safe so that the ids can sit in a path segment unquoted, as Graph's do.
    return base64.urlsafe_b64encode(text.encode()).decode("ascii")


def _escape(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(text, safe=""))


def external_user_id(email: str) -> str:
    """The directory id of a person of another tenant (or a B2B guest) with this address."""
    return _guid("user", email.lower())


def external_tenant_id(domain: str) -> str:
    """The tenant of a person who signs in with their own organisation's tenant."""
    return _guid("tenant", domain.lower().rstrip("."))


class World:
    """Meetings of a Scenario, their play times, callRecord versions and download counters."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time) -> None:
        self.scenario = scenario
        self.tenant_id = scenario.tenant.id
        self.clock = clock
        self._users = {u.upn.lower(): u for u in scenario.users}
        self._users.update({u.id.lower(): u for u in scenario.users})
        self._meetings = {m.id: m for m in scenario.meetings}
        self._played: dict[str, float] = {}
        self._versions: dict[str, int] = {}
        self._by_call_record = {self.call_record_id(m.id): m.id for m in scenario.meetings}
        # The occurrences of each online meeting (one, unless a series), earliest first.
        self._by_online_meeting: dict[str, tuple[str, ...]] = {}
        for m in sorted(scenario.meetings, key=lambda m: m.start):
            om_id = self.online_meeting_id(m.id)
            self._by_online_meeting[om_id] = (*self._by_online_meeting.get(om_id, ()), m.id)
        # counters read by /_emulator/stats
        self.recording_content_downloads = 0
        self.transcript_content_downloads: dict[str, int] = {}

    # -- people ----------------------------------------------------------------------------
    def user(self, id_or_upn: str) -> User | None:
        """A tenant user by directory id or UPN (case-insensitive)."""
        return self._users.get(id_or_upn.lower())

    def person_id(self, person: Participant) -> str | None:
        """A participant's directory id; None for phone dial-ins and anonymous guests."""
        if person.kind == "user" and person.upn is not None:
            user = self.user(person.upn)
            return user.id if user else None
        if person.kind == "external" and person.email is not None:
            return external_user_id(person.email)
        return None

    def person_tenant(self, person: Participant) -> str | None:
        """The tenant a participant signs in with; None for phone dial-ins and guests."""
        if person.kind == "user":
            return self.tenant_id
        if person.kind == "external" and person.email is not None:
            return person.tenant or external_tenant_id(person.email.rsplit("@", 1)[1])
        return None

    def is_b2b_guest(self, person: Participant) -> bool:
        """An external person holding a guest account of the home tenant."""
        return person.kind == "external" and (person.tenant or "").lower() == self.tenant_id

    # -- meetings --------------------------------------------------------------------------
    def meeting(self, meeting_id: str) -> Meeting:
        """The scenario's meeting; KeyError if unknown."""
        return self._meetings[meeting_id]

    def play(self, meeting_ids: Sequence[str] | None = None) -> list[str]:
        """Mark meetings (all when None) as ended now; a replay moves the time, not the ids."""
        ids = list(meeting_ids) if meeting_ids is not None else list(self._meetings)
        for meeting_id in ids:
            self.meeting(meeting_id)  # KeyError before anything changes
        now = self.clock()
        for meeting_id in ids:
            self._played[meeting_id] = now
        return ids

    def played_at(self, meeting_id: str) -> float | None:
        return self._played.get(meeting_id)

    def played(self) -> list[str]:
        """Ids of the played meetings, in scenario order."""
        return [m for m in self._meetings if m in self._played]

    def organizer(self, meeting_id: str) -> User:
        user = self.user(self.meeting(meeting_id).organizer)
        assert user is not None  # the scenario guarantees it
        return user

    def organizer_id(self, meeting_id: str) -> str:
        return self.organizer(meeting_id).id

    def call_record_id(self, meeting_id: str) -> str:
        return _guid("callRecord", meeting_id)

    def series_key(self, meeting_id: str) -> str:
        """What the online meeting is derived from: the series of a recurring meeting, whose
        occurrences share one meeting id, join link and thread; else the meeting itself."""
        series = self.meeting(meeting_id).series
        return meeting_id if series is None else f"series:{series}"

    def thread_id(self, meeting_id: str) -> str:
        return f"19:meeting_{_b64(_guid('thread', self.series_key(meeting_id)))}@thread.v2"

    def online_meeting_id(self, meeting_id: str) -> str:
        return _b64(f"1*{self.organizer_id(meeting_id)}*0**{self.thread_id(meeting_id)}")

    def transcript_id(self, meeting_id: str, index: int = 0) -> str:
        """The id of the meeting's `index`-th transcript (0: the first made)."""
        seed = meeting_id if index == 0 else f"{meeting_id}#{index}"
        return _b64(f"1##0##{_guid('transcript', seed)}")

    def transcript_ids(self, meeting_id: str) -> list[str]:
        """Ids of the meeting's transcripts, in the order they were made."""
        count = len(self.meeting(meeting_id).transcripts)
        return [self.transcript_id(meeting_id, i) for i in range(count)]

    def transcript_index(self, meeting_id: str, transcript_id: str) -> int | None:
        """Which of the meeting's transcripts `transcript_id` is; None if none of them."""
        ids = self.transcript_ids(meeting_id)
        return ids.index(transcript_id) if transcript_id in ids else None

    def recording_id(self, meeting_id: str) -> str:
        return _b64(f"1##0##{_guid('recording', meeting_id)}")

    def content_correlation_id(self, meeting_id: str, index: int = 0) -> str:
        """Links a meeting's transcript to its recording, as Graph's contentCorrelationId does."""
        return _guid("content", meeting_id if index == 0 else f"{meeting_id}#{index}")

    def join_web_url(self, meeting_id: str) -> str:
        """A Teams join link; Teams writes its escapes in lower case (`19%3ameeting_…%40…`)."""
        context = f'{{"Tid":"{self.tenant_id}","Oid":"{self.organizer_id(meeting_id)}"}}'
        return (
            "https://teams.microsoft.com/l/meetup-join/"
            f"{_escape(self.thread_id(meeting_id))}/0?context={_escape(context)}"
        )

    def has_transcript(self, meeting_id: str) -> bool:
        return bool(self.meeting(meeting_id).transcripts)

    def transcript_ready_at(self, meeting_id: str) -> float | None:
        """When the transcript appears: play time + its delay; None if not played or none."""
        at = self.played_at(meeting_id)
        if at is None or not self.has_transcript(meeting_id):
            return None
        return at + self.meeting(meeting_id).transcript_ready_after_s

    def transcript_ready(self, meeting_id: str) -> bool:
        at = self.transcript_ready_at(meeting_id)
        return at is not None and self.clock() >= at

    def transcript_created_at(self, meeting_id: str, index: int) -> float | None:
        """When transcript `index` was made: they all appear together when ready, each a
        second after the one before, the last at the ready time (None if not played).

        An occurrence of a series is dated in its own time instead (its scenario end plus
        `transcript_ready_after_s`): the occurrences list their transcripts together and are
        told apart by when they were made, as live, however close together they are played."""
        ready = self.transcript_ready_at(meeting_id)
        if ready is None:
            return None
        m = self.meeting(meeting_id)
        if m.series is not None:
            ready = m.end.timestamp() + m.transcript_ready_after_s
        return ready - (len(m.transcripts) - 1 - index)

    def call_record_ready_at(self, meeting_id: str) -> float | None:
        """When the callRecord exists: play time + `callrecord_after_s`; None if not played."""
        at = self.played_at(meeting_id)
        return None if at is None else at + self.meeting(meeting_id).callrecord_after_s

    def call_record_ready(self, meeting_id: str) -> bool:
        at = self.call_record_ready_at(meeting_id)
        return at is not None and self.clock() >= at

    def call_record_version(self, meeting_id: str) -> int:
        return self._versions.get(meeting_id, 1)

    def bump_call_record_version(self, meeting_id: str) -> int:
        self._versions[meeting_id] = self.call_record_version(meeting_id) + 1
        return self._versions[meeting_id]

    def meeting_by_call_record(self, call_record_id: str) -> str | None:
        return self._by_call_record.get(call_record_id.lower())

    def meeting_by_online_meeting(self, online_meeting_id: str) -> str | None:
        """The (first) scenario meeting of an online meeting id; None if unknown."""
        found = self._by_online_meeting.get(online_meeting_id)
        return found[0] if found else None

    def occurrences(self, online_meeting_id: str) -> tuple[str, ...]:
        """Every scenario meeting of an online meeting id, earliest first: one, or the
        occurrences of a recurring series; () if unknown."""
        return self._by_online_meeting.get(online_meeting_id, ())

    def joined(self, meeting_id: str, index: int) -> tuple[float, float]:
        """When participant `index` (a device) joined and left, as POSIX times: the organizer
        from the start, each further device a little later, everyone until the end."""
        m = self.meeting(meeting_id)
        start, end = m.start.timestamp(), m.end.timestamp()
        return start + min(20.0 * index, (end - start) / 4), end
