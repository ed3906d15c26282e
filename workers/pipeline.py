"""The meeting pipeline: both notification paths converge on one meeting key, whatever the order.

callRecord path: callRecord (+participants) -> rules that need no address -> meeting by
joinWebUrl -> attendance report -> policy -> transcript list -> contents -> hand-off.
Transcript path: transcript list (organizer and ids from the resource) -> callRecord, if it
exists yet -> meeting -> attendance report -> policy -> contents -> hand-off.

A meeting may have several transcripts (transcription stopped and started again): each is
fetched once and handed off with the others, in the order they were made. Live, the
transcript usually comes first and the callRecord up to hours later: a meeting written before
its callRecord existed gets its `Call_Record_Id__c` filled in when the callRecord arrives.

Both claim the meeting's aliases (callRecord id, online meeting id, join link) atomically,
then work under a per-meeting Redis lock, so duplicates, `updated` versions and the two paths
leave one ledger entry and download the transcript once. Whatever was learned is written to
the ledger, so a later notification about a decided meeting costs no Graph request.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

import redis
import structlog
from rq import Queue, Retry

from core import defaults, keys, times
from core.exceptions import BadInput, NotFound, UpstreamPermanent, UpstreamTransient
from core.settings import Settings
from policy import Decision, Meeting, Participant, PolicySettings, Reason, address_of, decide
from workers import handoff, participants, policy_config, resolve, rich, transcripts, users
from workers.ledger import SETTLED, Ledger, meeting_key
from workers.meeting import ResolvedMeeting, ResolvedParticipant, ResolvedTranscript
from workers.validation import TokenChecker

log = structlog.get_logger("workers.pipeline")

CHECK_FUNCTION = keys.JOB_CHECK_TRANSCRIPT
LOCK_WAIT_SECONDS = 60
SLACK = timedelta(minutes=15)  # a transcript's times against its meeting's
RECENT = timedelta(hours=3)  # one meeting's notifications arrive within this (graph.md §2)
# Rules the callRecord alone can apply: no participant address is needed for them.
_EARLY = frozenset({Reason.TOO_SHORT, Reason.RECORDER_NOT_ECI_USER})


class GraphReader(Protocol):
    """The Graph requests the pipeline makes (workers.graph.api.GraphApi; fakes in tests)."""

    def call_record(self, call_record_id: str) -> dict[str, Any] | None: ...
    def meeting_by_join_url(self, organizer_id: str, url: str) -> dict[str, Any] | None: ...
    def meeting(self, organizer_id: str, meeting_id: str) -> dict[str, Any] | None: ...
    def attendance(
        self, organizer_id: str, meeting_id: str, start: datetime | None, end: datetime | None
    ) -> dict[str, Any] | None: ...
    def transcripts(self, organizer_id: str, meeting_id: str) -> list[dict[str, Any]]: ...
    def transcript_content(
        self, organizer_id: str, meeting_id: str, transcript_id: str
    ) -> str | None: ...
    def verified_domains(self) -> list[str]: ...


class Pipeline:
    """One worker's view of the pipeline: Redis, settings, Graph and the queue."""

    def __init__(
        self,
        conn: redis.Redis,
        settings: Settings,
        graph: Callable[[], GraphReader],
        queue: Queue,
        clock: Callable[[], float] = time.time,
        tokens: Callable[[], TokenChecker] | None = None,
    ) -> None:
        self.conn = conn
        self.tokens = tokens or (lambda: TokenChecker(settings))
        self.settings = settings
        self._graph = graph
        self.queue = queue
        self.clock = clock
        self.ledger = Ledger(conn)

    @cached_property
    def api(self) -> GraphReader:
        return self._graph()

    # the two notification paths ----------------------------------------------------------
    def on_call_record(self, payload: Mapping[str, Any]) -> dict[str, str]:
        cr_id = str(payload["ids"]["callRecordId"]).lower()
        change = str(payload.get("changeType") or "")
        known = self.ledger.alias("cr", cr_id)
        if known and self._decided(known):
            self._call_record_arrived(known, cr_id)
            return self._noted(known, f"callRecord {change} notification: already handled")
        record = self.api.call_record(cr_id)
        if record is None:
            raise NotFound(f"callRecord {cr_id} is not readable yet (404)")
        facts = resolve.from_call_record(record)
        # A recurring series shares one join link and online meeting id: the day tells apart
        # its occurrences.
        day = resolve.day(facts.start)
        url = resolve.occurrence(facts.join_web_url, day)
        known = known or self.ledger.alias("url", url)
        if known and self._decided(known):
            self.ledger.claim([("cr", cr_id), ("url", url)], known)
            self._call_record_arrived(known, cr_id)
            return self._noted(known, f"callRecord {change} notification: already handled")
        organizer = facts.organizer or Participant(display_name="(no organizer)", role="organizer")
        early = self._early_decision(organizer, facts)
        if early is not None or not facts.join_web_url or not facts.organizer_id:
            key = self.ledger.claim([("cr", cr_id), ("url", url)], resolve.call_record_key(cr_id))
            with self._lock(key):
                self._note_facts(key, facts, change)
                if self._decided(key):
                    return self._summary(key, "already decided")
                decision = early or self._decide(organizer, facts.joined, facts.start, facts.end)
                self._record_decision(key, decision)
                if not decision.eligible:
                    return self._settle(key, "skipped", decision.explain())
                return self._settle(key, "no_transcript", "no online meeting: no joinWebUrl")
        assert facts.organizer_id is not None
        meeting = self.api.meeting_by_join_url(facts.organizer_id, facts.join_web_url)
        if meeting is None or not meeting.get("id"):
            key = self.ledger.claim([("cr", cr_id), ("url", url)], resolve.call_record_key(cr_id))
            with self._lock(key):
                self._note_facts(key, facts, change)
                if self._decided(key):
                    return self._summary(key, "already decided")
                decision = self._decide(organizer, facts.joined, facts.start, facts.end)
                self._record_decision(key, decision)
                if not decision.eligible:
                    return self._settle(key, "skipped", decision.explain())
                return self._settle(key, "no_transcript", "the online meeting was not found")
        om_id = str(meeting["id"])
        key = self.ledger.claim(
            [("cr", cr_id), ("url", url), ("om", resolve.occurrence(om_id, day))],
            resolve.online_meeting_key(om_id, day),
        )
        self.ledger.point("om", om_id, key)
        with self._lock(key):
            self._note_facts(key, facts, change)
            self._note_meeting(key, meeting, facts.organizer_id)
            if self._decided(key):
                return self._summary(key, "already decided")
            attendance = self.api.attendance(facts.organizer_id, om_id, facts.start, facts.end)
            org, joined = participants.merge(organizer, facts.joined, attendance, meeting)
            decision = self._decide(org, joined, facts.start, facts.end)
            self._record_decision(key, decision)
            if not decision.eligible:
                return self._settle(key, "skipped", decision.explain())
            return self._transcript_stage(key)

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
                if not self._needs_transcript(key):
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
            self._record_decision(key, decision)
            if not decision.eligible:
                return self._settle(key, "skipped", decision.explain())
            return self._transcript_stage(key, every)

    def _call_record_of(self, call_id: str | None) -> resolve.CallRecordFacts | None:
        """The callRecord of the transcript's call (`callId`), or None while Graph has none."""
        if not call_id:
            return None
        record = self.api.call_record(call_id)
        return resolve.from_call_record(record) if record else None

    def _call_record_arrived(self, key: str, cr_id: str) -> None:
        """The callRecord of a meeting decided without it: note its id and, once the meeting
        is in Salesforce without it, queue the fill-in of `Call_Record_Id__c`."""
        if self.ledger.meeting(key).get("call_record_id"):
            return
        self.ledger.update(key, call_record_id=cr_id)
        self.ledger.link_resource("callRecords", cr_id, key)
        self.ledger.event(key, "callRecord arrived after the meeting was decided")
        # Read after the write above: a push finishing meanwhile sees the id itself.
        if self.ledger.meeting(key).get("outcome") == "pushed":
            handoff.enqueue_fill(self.queue, key)

    def _transcript_of_known(
        self, key: str, tid: str, listed: list[dict[str, Any]] | None = None
    ) -> dict[str, str]:
        """A transcript notification for a meeting already decided."""
        with self._lock(key):
            self.ledger.event(key, "transcript notification", transcript_id=tid)
            chosen = self._transcript_ids(key)
            if not self._needs_transcript(key):
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
        state = self.ledger.meeting(key)
        handed = state.get("outcome") == "pushed" or (
            state.get("push_enqueued_at") and state.get("outcome") not in SETTLED | {"failed"}
        )
        organizer_id, om_id = state.get("organizer_id"), state.get("online_meeting_id")
        if state.get("decision") != "eligible" or not handed or not organizer_id or not om_id:
            return self._summary(key, "already handled")
        if listed is None:
            listed = self.api.transcripts(organizer_id, om_id)
        chosen = self._transcript_ids(key)
        start, end = times.parse(state.get("start")), times.parse(state.get("end"))
        fresh = [t for t in transcripts.select(listed, start, end) if t not in chosen]
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
        state = self.ledger.meeting(key)
        if "decision" not in state:
            return False
        start = times.parse(state.get("start"))
        end = times.parse(state.get("end"))
        decided = times.parse(state.get("decided_at"))
        if created is None or start is None:
            return True
        if created < start - SLACK:
            return False
        during = end is not None and created <= end + SLACK
        recent = decided is not None and datetime.now(UTC) - decided <= RECENT
        return during or recent

    def check_transcript(self, key: str) -> dict[str, str]:
        """A scheduled re-check of a late transcript."""
        with self._lock(key):
            self.ledger.clear(key, "next_check_at")
            if not self._needs_transcript(key):
                return self._summary(key, "nothing to check")
            return self._transcript_stage(key)

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

    # steps -------------------------------------------------------------------------------
    def _early_decision(
        self, organizer: Participant, facts: resolve.CallRecordFacts
    ) -> Decision | None:
        if facts.start is None or facts.end is None:
            return None
        decision = self._decide(organizer, facts.joined, facts.start, facts.end)
        return decision if decision.reason in _EARLY else None

    def _decide(
        self,
        organizer: Participant,
        joined: tuple[Participant, ...] | list[Participant],
        start: datetime | None,
        end: datetime | None,
    ) -> Decision:
        start = start or end or datetime.now(UTC)
        end = end or start
        meeting = Meeting(organizer=organizer, participants=tuple(joined), start=start, end=end)
        return decide(
            meeting,
            home_tenant_id=self.settings.graph_tenant_id or "",
            eci_users=users.identifiers(self.conn),
            settings=self.policy,
        )

    @cached_property
    def policy(self) -> PolicySettings:
        return policy_config.effective(
            self.settings, self.conn, lambda: self.api.verified_domains()
        )

    def _transcript_stage(
        self, key: str, listed: list[dict[str, Any]] | None = None
    ) -> dict[str, str]:
        """Choose the meeting's transcripts (from `listed`, else a listing) once, fetch each
        not yet stored, and hand off when all are there."""
        state = self.ledger.meeting(key)
        organizer_id, om_id = state.get("organizer_id"), state.get("online_meeting_id")
        if not organizer_id or not om_id:
            return self._settle(key, "no_transcript", "no online meeting to read a transcript of")
        if not state.get("transcript_wait_started"):
            self.ledger.update(key, transcript_wait_started=self.clock())
        tids = self._transcript_ids(key)
        if not tids:
            if listed is None:
                listed = self.api.transcripts(organizer_id, om_id)
            start, end = times.parse(state.get("start")), times.parse(state.get("end"))
            tids = transcripts.select(listed, start, end)
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

    def _transcript_ids(self, key: str) -> list[str]:
        """The transcripts chosen for the meeting, in the order made ([] before a choice)."""
        raw = self.ledger.meeting(key).get("transcript_ids")
        return [str(t) for t in json.loads(raw)] if raw else []

    def _wait(self, key: str, why: str) -> dict[str, str]:
        state = self.ledger.meeting(key)
        now = self.clock()
        pending = float(state.get("next_check_at") or 0)
        if pending > now:
            return self._summary(key, "transcript re-check already scheduled")
        attempts = self.ledger.increment(key, "attempts")
        elapsed = now - float(state.get("transcript_wait_started") or now)
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
            CHECK_FUNCTION,
            key,
            job_id=f"check-{key}-{attempts}",
            job_timeout=defaults.JOB_TIMEOUT_SECONDS,
            result_ttl=defaults.JOB_RESULT_TTL_SECONDS,
            retry=Retry(max=len(defaults.JOB_RETRY_INTERVALS),
                        interval=list(defaults.JOB_RETRY_INTERVALS)),
        )  # fmt: skip
        self.ledger.update(key, stage="awaiting_transcript", next_check_at=now + delay)
        self.ledger.event(key, f"{why}: re-check in {delay:g} s", attempt=attempts)
        return self._summary(key, "awaiting transcript")

    def _hand_off(self, key: str, again: bool = False) -> dict[str, str]:
        """Save the resolved meeting and queue its push (`again`: with more transcripts)."""
        state = self.ledger.meeting(key)
        if not again and (state.get("push_enqueued_at") or state.get("outcome") in SETTLED):
            return self._summary(key, "already handed off")
        texts = tuple(
            ResolvedTranscript(id=tid, vtt=transcripts.stored(self.conn, key, tid) or "")
            for tid in self._transcript_ids(key)
        )
        people = tuple(
            ResolvedParticipant(**p) for p in json.loads(state.get("participants") or "[]")
        )
        start = times.parse(state.get("start")) or datetime.now(UTC)
        meeting = ResolvedMeeting(
            meeting_key=key,
            online_meeting_id=state.get("online_meeting_id") or None,
            call_record_id=state.get("call_record_id") or None,
            subject=state.get("subject") or "Teams meeting",
            start=start,
            end=times.parse(state.get("end")) or start,
            organizer_email=state.get("organizer_email") or "",
            reason=state.get("reason") or "",
            participants=people,
            transcripts=texts,
        )
        handoff.save(self.conn, meeting)
        # Queue first, mark second: a crash in between re-queues the same job id, harmlessly.
        job_id = handoff.enqueue_push(self.queue, key, len(texts) if again else 0)
        self.ledger.update(key, stage="ready", push_enqueued_at=datetime.now(UTC))
        self.ledger.clear(key, "next_check_at")
        self.ledger.event(key, "ready: handed to the Salesforce stage", job_id=job_id)
        return self._summary(key, "ready")

    # ledger helpers ----------------------------------------------------------------------
    def _decided(self, key: str) -> bool:
        return bool(self.conn.hexists(meeting_key(key), "decision"))

    def _needs_transcript(self, key: str) -> bool:
        state = self.ledger.meeting(key)
        return (
            state.get("decision") == "eligible"
            and state.get("outcome") not in SETTLED
            and not state.get("push_enqueued_at")
        )

    def _note_facts(self, key: str, facts: resolve.CallRecordFacts, change: str) -> None:
        self.ledger.update(
            key,
            call_record_id=facts.call_record_id,
            call_record_version=facts.version,
            organizer_id=facts.organizer_id,
            join_web_url=facts.join_web_url,
            start=facts.start,
            end=facts.end,
        )
        self.ledger.link_resource("callRecords", facts.call_record_id, key)
        self.ledger.event(key, f"callRecord {change} notification", version=facts.version)

    def _note_meeting(self, key: str, meeting: Mapping[str, Any], organizer_id: str) -> None:
        state = self.ledger.meeting(key)
        self.ledger.update(
            key,
            online_meeting_id=meeting.get("id"),
            organizer_id=state.get("organizer_id") or organizer_id,
            subject=meeting.get("subject"),
            join_web_url=state.get("join_web_url") or meeting.get("joinWebUrl"),
            start=state.get("start") or meeting.get("startDateTime"),
            end=state.get("end") or meeting.get("endDateTime"),
        )

    def _record_decision(self, key: str, decision: Decision) -> None:
        people = participants.resolved(decision)
        organizer = address_of(decision.organizer)
        self.ledger.update(
            key,
            decision="eligible" if decision.eligible else "ineligible",
            reason=str(decision.reason),
            explanation=decision.explain(),
            split=decision.to_dict(),
            participants=[dataclasses.asdict(p) for p in people],
            organizer_email=str(organizer) if organizer else decision.organizer.label(),
            decided_at=datetime.now(UTC),
            stage="decided",
        )
        self.ledger.event(key, "decided", explanation=decision.explain())

    def _settle(self, key: str, outcome: str, reason: str) -> dict[str, str]:
        self.ledger.update(key, stage="done")
        self.ledger.set_outcome(key, outcome, reason)
        log.info("meeting_settled", meeting_key=key, outcome=outcome)
        return self._summary(key, outcome)

    def _noted(self, key: str, what: str) -> dict[str, str]:
        self.ledger.event(key, what)
        return self._summary(key, "already handled")

    def _summary(self, key: str, action: str) -> dict[str, str]:
        return {"meeting_key": key, "action": action}

    def fail(self, key: str | None, kind: str, rid: str, error: str) -> None:
        """A permanent failure: on the meeting when known, else on the notified resource."""
        if key is None:
            key = self.ledger.alias("cr" if kind == "callRecords" else "om", rid)
        if key is None and kind == "callRecords" and rid:
            # Refused before the meeting was found (a 403 on the callRecord or the meeting
            # lookup): the callRecord stands for the meeting, so it is counted and explained.
            key = self.ledger.claim([("cr", rid)], resolve.call_record_key(rid))
            self.ledger.update(key, call_record_id=rid.lower())
        self.ledger.resource_error(kind, rid, error, key)
        if key is not None:
            self.ledger.error(key, error)
            self.ledger.set_outcome(key, "failed", error)

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        lock = self.conn.lock(
            f"{keys.MEETING_LOCK}:{key}",
            timeout=defaults.JOB_TIMEOUT_SECONDS,
            blocking_timeout=LOCK_WAIT_SECONDS,
        )
        if not lock.acquire():
            raise UpstreamTransient(f"meeting {key} is busy in another worker")
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("lock_expired", meeting_key=key)
