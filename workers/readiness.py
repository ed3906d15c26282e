"""Transcript readiness: choose an eligible meeting's transcripts, fetch each once, wait for
late ones with doubling re-checks inside a window (DESIGN §5.2), then hand off to Salesforce.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core import keys
from core.exceptions import UpstreamPermanent
from workers import handoff, recording, retries, transcripts, users
from workers.meeting import ResolvedMeeting, ResolvedTranscript
from workers.state import MeetingState
from workers.steps import Steps


class Readiness(Steps):
    """The transcript stage of an eligible meeting, and its hand-off."""

    def check_transcript(self, key: str) -> dict[str, str]:
        """A scheduled re-check of a late transcript."""
        with self._lock(key):
            self.ledger.clear(key, "next_check_at")
            if not self.state(key).needs_transcript:
                return self._summary(key, "nothing to check")
            return self._transcript_stage(key)

    def _transcript_stage(
        self, key: str, listed: list[dict[str, Any]] | None = None
    ) -> dict[str, str]:
        """Choose the meeting's transcripts (from `listed`, else a listing) once, fetch each
        not yet stored, and hand off when all are there."""
        state = self.state(key)
        organizer_id, om_id = state.organizer_id, state.online_meeting_id
        if not organizer_id or not om_id:
            return self._settle(key, "no_transcript", "no online meeting to read a transcript of")
        if state.transcript_wait_started is None:
            self.ledger.update(key, transcript_wait_started=self.clock())
        tids = list(state.transcript_ids)
        if not tids:
            if listed is None:
                listed = self.api.transcripts(organizer_id, om_id)
            tids = transcripts.select(listed, state.start, state.end)
            if not tids:
                return self._wait(key, "no transcript listed yet")
            self.ledger.update(key, transcript_ids=tids, transcript_id=tids[0])
            self.ledger.claim([("tr", tid) for tid in tids], key)
        for tid in tids:
            if transcripts.stored(self.conn, key, tid) is not None:
                continue
            vtt = self.api.transcript_content(organizer_id, om_id, tid)
            if vtt is None:
                return self._wait(key, "transcript listed but not ready (404)")
            transcripts.store(self.conn, key, tid, vtt)
            self.ledger.event(key, "transcript fetched", transcript_id=tid, characters=len(vtt))
        return self._hand_off(key)

    def _wait(self, key: str, why: str) -> dict[str, str]:
        state = self.state(key)
        now = self.clock()
        if state.next_check_at is not None and state.next_check_at > now:
            return self._summary(key, "transcript re-check already scheduled")
        attempts = self.ledger.increment(key, "attempts")
        started = state.transcript_wait_started
        elapsed = now - (now if started is None else started)
        delay = transcripts.next_delay(
            self.settings.transcript_first_interval_seconds,
            attempts,
            elapsed,
            self.settings.transcript_window_seconds,
        )
        if delay is None:
            window = self.settings.transcript_window_seconds
            return self._settle(key, "no_transcript", f"no transcript within {window:g} s ({why})")
        self.queue.enqueue_in(
            timedelta(seconds=delay),
            keys.JOB_CHECK_TRANSCRIPT,
            key,
            job_id=f"check-{key}-{attempts}",
            **retries.options(),
        )
        self.ledger.update(key, stage="awaiting_transcript", next_check_at=now + delay)
        self.ledger.event(key, f"{why}: re-check in {delay:g} s", attempt=attempts)
        return self._summary(key, "awaiting transcript")

    def _hand_off(self, key: str, again: bool = False) -> dict[str, str]:
        """Save the resolved meeting and queue its push (`again`: with more transcripts)."""
        state = self.state(key)
        if not again and (state.push_enqueued or state.settled):
            return self._summary(key, "already handed off")
        texts = tuple(
            ResolvedTranscript(id=tid, vtt=transcripts.stored(self.conn, key, tid) or "")
            for tid in state.transcript_ids
        )
        start = state.start or self.now()
        meeting = ResolvedMeeting(
            meeting_key=key,
            online_meeting_id=state.online_meeting_id,
            call_record_id=state.call_record_id,
            subject=state.subject or "Teams meeting",
            start=start,
            end=state.end or start,
            organizer_email=state.organizer_email,
            reason=state.reason,
            participants=state.participants,
            transcripts=texts,
            recording_url=self._recording_link(key, state),
        )
        handoff.save(self.conn, meeting)
        # Queue first, mark second: a crash in between re-queues the same job id, harmlessly.
        job_id = handoff.enqueue_push(self.queue, key, len(texts) if again else 0)
        self.ledger.update(key, stage="ready", push_enqueued_at=self.now())
        self.ledger.clear(key, "next_check_at")
        self.ledger.event(key, "ready: handed to the Salesforce stage", job_id=job_id)
        return self._summary(key, "ready")

    def _recording_link(self, key: str, state: MeetingState) -> str | None:
        """The `webUrl` of the meeting's recording in a connected organizer's OneDrive, looked
        up once per meeting (one request; none for an admin-added organizer or a meeting whose
        options turned recording off); never fatal."""
        if state.recording_checked:
            return state.recording_url
        url: str | None = None
        organizer_id = state.organizer_id or ""
        if not state.recording_allowed:
            self.ledger.event(
                key, "no recording link: recording was turned off in the meeting's options"
            )
            self.ledger.update(key, recording_checked_at=self.now())
            return None
        try:
            files = self.api.recording_files(organizer_id) if organizer_id else None
        except UpstreamPermanent as exc:  # e.g. a consent given before Files.Read was asked
            files = None
            self.ledger.event(key, "no recording link: the OneDrive listing failed", error=str(exc))
        else:
            if files is None:
                user = users.find(self.conn, organizer_id) if organizer_id else None
                source = user.source if user else "none"
                why = (
                    "the organizer was added by an admin, not through the connect flow: no "
                    "delegated Files.Read on their OneDrive"
                    if source != "connect"
                    else "the organizer's delegated token is unavailable"
                )
                self.ledger.event(key, f"no recording link: {why}", organizer_source=source)
            else:
                start = state.start or self.now()
                found = recording.pick(files, state.subject, start, state.end or start)
                url = str(found["webUrl"]) if found else None
                if found:
                    self.ledger.event(key, "recording link found", file=found.get("name"))
                else:
                    self.ledger.event(
                        key,
                        "no recording link: no recording of this meeting in the organizer's "
                        "OneDrive Recordings folder",
                        files_listed=len(files),
                    )
        self.ledger.update(key, recording_checked_at=self.now(), recording_url=url)
        return url
