"""What both notification paths share: deciding, writing down, settling, and the meeting lock.

Every step that learns something writes it to the ledger; every decision goes through
`_rule` (record it; skip the meeting, or go on) and every end through `_settle`. Times come
from the injected `clock`, so tests move time without sleeping.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

import redis
import structlog
from redis.lock import Lock
from rq import Queue

from core import keys
from core.exceptions import UpstreamTransient
from core.settings import Settings
from policy import Decision, Meeting, Participant, PolicySettings, Reason, address_of, decide
from workers import participants, policy_config, resolve, state, users
from workers.ledger import Ledger, meeting_hash
from workers.state import MeetingState
from workers.validation import TokenChecker

log = structlog.get_logger("workers.pipeline")

LOCK_WAIT_SECONDS = 60
# Rules the callRecord alone can apply: no participant address is needed for them.
EARLY = frozenset({Reason.TOO_SHORT, Reason.RECORDER_NOT_ECI_USER})


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
    def recording_files(self, organizer_id: str) -> list[dict[str, Any]] | None: ...


class Steps:
    """One worker's view of the pipeline: Redis, settings, Graph, the queue and a clock."""

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

    @cached_property
    def policy(self) -> PolicySettings:
        return policy_config.effective(
            self.settings, self.conn, lambda: self.api.verified_domains()
        )

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def state(self, key: str) -> MeetingState:
        return state.load(self.ledger, key)

    # deciding ----------------------------------------------------------------------------
    def _decide(
        self,
        organizer: Participant,
        joined: tuple[Participant, ...] | list[Participant],
        start: datetime | None,
        end: datetime | None,
    ) -> Decision:
        start = start or end or self.now()
        end = end or start
        meeting = Meeting(organizer=organizer, participants=tuple(joined), start=start, end=end)
        return decide(
            meeting,
            home_tenant_id=self.settings.graph_tenant_id or "",
            eci_users=users.identifiers(self.conn),
            settings=self.policy,
        )

    def _early_decision(
        self, organizer: Participant, facts: resolve.CallRecordFacts
    ) -> Decision | None:
        """The decision when a rule that needs no address already rules the meeting out."""
        if facts.start is None or facts.end is None:
            return None
        decision = self._decide(organizer, facts.joined, facts.start, facts.end)
        return decision if decision.reason in EARLY else None

    def _rule(
        self, key: str, decision: Decision, eligible: Callable[[], dict[str, str]]
    ) -> dict[str, str]:
        """Record the decision; an ineligible meeting is settled `skipped`, an eligible one
        goes on with `eligible()`."""
        self._record_decision(key, decision)
        if not decision.eligible:
            return self._settle(key, "skipped", decision.explain())
        return eligible()

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
            decided_at=self.now(),
            stage="decided",
        )
        self.ledger.event(key, "decided", explanation=decision.explain())

    # writing down ------------------------------------------------------------------------
    def _decided(self, key: str) -> bool:
        return bool(self.conn.hexists(meeting_hash(key), "decision"))

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
        known = self.ledger.meeting(key)
        self.ledger.update(
            key,
            online_meeting_id=meeting.get("id"),
            organizer_id=known.get("organizer_id") or organizer_id,
            subject=meeting.get("subject"),
            join_web_url=known.get("join_web_url") or meeting.get("joinWebUrl"),
            start=known.get("start") or meeting.get("startDateTime"),
            end=known.get("end") or meeting.get("endDateTime"),
            # Only a meeting whose options turned recording off is known to have none.
            recording_allowed=meeting.get("allowRecording") is not False,
        )

    # ending ------------------------------------------------------------------------------
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
        """One worker at a time on a meeting. The lock lives one heartbeat TTL and is renewed
        every third of it while held: a worker killed mid-job frees the meeting within the
        TTL, as RQ frees its job, instead of blocking every other job of it for minutes."""
        ttl = max(2, self.settings.worker_heartbeat_ttl)
        lock = self.conn.lock(  # not thread-local: the keeper thread renews it
            f"{keys.MEETING_LOCK}:{key}",
            timeout=ttl,
            blocking_timeout=LOCK_WAIT_SECONDS,
            thread_local=False,
        )
        # The token names the holding process (ops and the chaos demo read it).
        if not lock.acquire(token=f"{os.getpid()}:{uuid.uuid4().hex}"):
            raise UpstreamTransient(f"meeting {key} is busy in another worker")
        done = threading.Event()
        keeper = threading.Thread(
            target=_keep, args=(lock, key, ttl / 3, done), daemon=True, name="meeting-lock"
        )
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join()
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("lock_expired", meeting_key=key)


def _keep(lock: Lock, key: str, every: float, done: threading.Event) -> None:
    """Renew a held meeting lock until `done`; a Redis error is retried at the next turn."""
    while not done.wait(every):
        try:
            lock.reacquire()
        except redis.exceptions.LockError:  # not owned any more: it expired meanwhile
            log.warning("lock_lost", meeting_key=key)
            return
        except redis.RedisError as exc:
            log.warning("lock_renewal_failed", meeting_key=key, error=type(exc).__name__)
