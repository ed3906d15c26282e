"""The transcript path: transcript list (organizer and ids from the resource) -> callRecord,
if it exists yet -> meeting -> attendance report -> policy -> transcripts (readiness).

Live, the transcript notification usually comes first. A transcript made after its meeting
was handed off (transcription restarted near the end) is fetched alone and the meeting is
handed off again with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from core import times
from core.exceptions import BadInput, NotFound, UpstreamPermanent, UpstreamTransient
from workers import participants, resolve, rich, transcripts
from workers.readiness import Readiness

log = structlog.get_logger("workers.pipeline")

SLACK = timedelta(minutes=15)  # a transcript's times against its meeting's
RECENT = timedelta(hours=3)  # one meeting's notifications arrive within this (graph.md §2)


class TranscriptPath(Readiness):
    def on_transcript(self, payload: Mapping[str, Any]) -> dict[str, str]:
        ids = payload["ids"]
        om_id, tid = str(ids["meetingId"]), str(ids["transcriptId"])
        organizer_id, source = self._organizer(payload, om_id)
        known = self.ledger.alias("tr", tid)
        if known and self._decided(known):
            return self._transcript_of_known(known, tid)
        if not organizer_id:
            raise UpstreamPermanent(f"transcript {tid}: the meeting's organizer is unknown")
        # The list, not the one transcript: it costs the same request and names the others.
        every = self.api.transcripts(organizer_id, om_id)
        listed = next((t for t in every if t.get("id") == tid), None)
        if listed is None:
            raise NotFound(f"transcript {tid} is not listed yet")
        t_start = times.parse(listed.get("createdDateTime"))
        t_end = times.parse(listed.get("endDateTime")) or t_start
        latest = self.ledger.alias("om", om_id)  # the occurrence seen last, if any
        if latest and self._same_occurrence(latest, t_start):
            self.ledger.claim([("tr", tid)], latest)
            return self._transcript_of_known(latest, tid, every)
        meeting = self.api.meeting(organizer_id, om_id)
        if meeting is None:
            raise NotFound(f"online meeting of transcript {tid} is not readable (404)")
        attendance = self.api.attendance(organizer_id, om_id, t_start, t_end)
        # The transcript names its call: with the callRecord this path sees the same people,
        # times and ids as the callRecord path, so both write the same records. Without it
        # (not there yet), its id still leads the callRecord's notification here.
        call_id = str(listed.get("callId") or "").lower() or None
        facts = self._call_record_of(call_id)
        a_start, a_end = resolve.attendance_times(attendance)
        start = (facts.start if facts else None) or a_start or t_start
        start = start or times.parse(meeting.get("startDateTime"))
        end = (facts.end if facts else None) or a_end or t_end
        end = end or times.parse(meeting.get("endDateTime"))
        day = resolve.day(start)
        url = resolve.occurrence(meeting.get("joinWebUrl") or None, day)
        aliases = [("tr", tid), ("om", resolve.occurrence(om_id, day)), ("url", url)]
        aliases.append(("cr", facts.call_record_id if facts is not None else call_id))
        key = self.ledger.claim(aliases, resolve.online_meeting_key(om_id, day))
        self.ledger.point("om", om_id, key)
        with self._lock(key):
            self.ledger.event(key, "transcript notification", organizer_from=source)
            if facts is not None:
                self._note_facts(key, facts, "(read for the transcript)")
            self._note_meeting(key, meeting, organizer_id)
            if self._decided(key):
                if not self.state(key).needs_transcript:
                    return self._summary(key, "already handled")
                return self._transcript_stage(key, every)
            if attendance is None and facts is None:
                # Without the attendance report this path knows nobody who joined: deciding now
                # could call a meeting "solo". The callRecord path (or a retry) decides instead.
                self.ledger.event(key, "no attendance report yet: left to the callRecord")
                raise UpstreamTransient(f"meeting {key}: no attendance report to decide on yet")
            self.ledger.update(key, start=start, end=end)
            organizer = resolve.meeting_organizer(meeting, organizer_id)
            if facts is not None and facts.organizer is not None:
                organizer = facts.organizer
            joined = facts.joined if facts is not None else ()
            org, joined = participants.merge(organizer, joined, attendance, meeting)
            decision = self._decide(org, joined, start, end)
            return self._rule(key, decision, lambda: self._transcript_stage(key, every))

    def _call_record_of(self, call_id: str | None) -> resolve.CallRecordFacts | None:
        """The callRecord of the transcript's call (`callId`), or None while Graph has none."""
        if not call_id:
            return None
        record = self.api.call_record(call_id)
        return resolve.from_call_record(record) if record else None

    def _transcript_of_known(
        self, key: str, tid: str, listed: list[dict[str, Any]] | None = None
    ) -> dict[str, str]:
        """A transcript notification for a meeting already decided."""
        with self._lock(key):
            self.ledger.event(key, "transcript notification", transcript_id=tid)
            state = self.state(key)
            chosen = state.transcript_ids
            if not state.needs_transcript:
                if chosen and tid not in chosen:
                    return self._late_transcript(key, tid, listed)
                return self._summary(key, "already handled")
            if chosen and tid not in chosen:
                self.ledger.clear(key, "transcript_ids")  # one more was made: list again
                listed = None
            return self._transcript_stage(key, listed)

    def _late_transcript(
        self, key: str, tid: str, listed: list[dict[str, Any]] | None
    ) -> dict[str, str]:
        """A transcript made after the meeting was handed off (transcription restarted near
        the end, or ready only after the meeting was decided): fetch it (the others are
        stored) and hand the meeting off again, so that it is written with every one."""
        state = self.state(key)
        handed = state.outcome == "pushed" or (
            state.push_enqueued and not state.settled and state.outcome != "failed"
        )
        organizer_id, om_id = state.organizer_id, state.online_meeting_id
        if state.decision != "eligible" or not handed or not organizer_id or not om_id:
            return self._summary(key, "already handled")
        if listed is None:
            listed = self.api.transcripts(organizer_id, om_id)
        chosen = list(state.transcript_ids)
        fresh = [t for t in transcripts.select(listed, state.start, state.end) if t not in chosen]
        if tid not in fresh:  # another occurrence's, or not listed: nothing of this meeting's
            return self._summary(key, "already handled")
        for new in fresh:
            if transcripts.stored(self.conn, key, new) is None:
                vtt = self.api.transcript_content(organizer_id, om_id, new)
                if vtt is None:  # the notification's job is retried
                    raise NotFound(f"transcript {new} is listed but not readable yet (404)")
                transcripts.store(self.conn, key, new, vtt)
                self.ledger.event(key, "transcript fetched", transcript_id=new,
                                  characters=len(vtt))  # fmt: skip
        self.ledger.update(key, transcript_ids=chosen + fresh)
        self.ledger.claim([("tr", t) for t in fresh], key)
        self.ledger.event(key, "transcript made after the hand-off: handing off again",
                          transcript_id=tid)  # fmt: skip
        return self._hand_off(key, again=True)

    def _same_occurrence(self, key: str, created: datetime | None) -> bool:
        """Whether a transcript created at `created` belongs to the decided meeting `key`: made
        after it started (an earlier occurrence's never is), and during it or while its
        notifications are still arriving (a later occurrence is another day)."""
        state = self.state(key)
        if not state.decided:
            return False
        if created is None or state.start is None:
            return True
        if created < state.start - SLACK:
            return False
        during = state.end is not None and created <= state.end + SLACK
        recent = state.decided_at is not None and self.now() - state.decided_at <= RECENT
        return during or recent

    def _organizer(self, payload: Mapping[str, Any], om_id: str) -> tuple[str | None, str]:
        """The meeting's organizer: from the resource path, else the rich notification's data
        (its validation tokens and HMAC checked), else the online meeting id (an undocumented
        format)."""
        named = payload["ids"].get("organizerId")
        if named:
            return str(named), "resource"
        try:
            tokens = payload.get("validationTokens")
            if payload.get("encryptedContent") and tokens:
                self.tokens().check(tokens)
            hint = rich.organizer_hint(payload, self.settings.graph_encryption_key_path, om_id)
        except BadInput as exc:
            log.warning("rich_data_rejected", reason=str(exc))
            hint = None
        if hint:
            return hint, "encrypted content"
        return resolve.organizer_from_meeting_id(om_id), "meeting id"
