"""Reconciliation: callRecords Graph lists that no notification announced go through the same jobs.

Graph sends no `missed` events for callRecords (DESIGN §5.4). The clock lists callRecords
started since a watermark (minus an overlap: a long meeting's record appears only after it
ends) and enqueues `workers.jobs.handle_notification` with the receiver's callRecord payload
for each one the ledger does not know. `ingest backfill` uses the same path for the past.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from core import defaults, keys, logs, times
from core.exceptions import UpstreamPermanent
from core.settings import Settings
from ingest import health
from ingest.enqueue import job_options
from workers import users
from workers.ledger import Ledger

WATERMARK_KEY = keys.RECONCILE_WATERMARK
DELTA_KEY = keys.RECONCILE_DELTA
_ENQUEUED = keys.RECONCILE_ENQUEUED
ENQUEUED_TTL_SECONDS = 6 * 3600  # a record enqueued by a pass is not enqueued again meanwhile
# A record whose call ended this recently is left to its notification (it usually arrives
# within 15 minutes); the overlap brings it back in a later pass.
GRACE_SECONDS = 900
JOB = keys.JOB_NOTIFICATION

log = logs.get_logger("ingest.reconcile")


class CallRecordLister(Protocol):
    """Lists callRecords started at or after a time (CallRecords below; fakes in tests)."""

    def since(self, start: datetime) -> Iterator[dict[str, Any]]: ...


class CallRecords:
    """`GET /communications/callRecords?$filter=startDateTime ge …`, every page, over msgraph."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def since(self, start: datetime) -> Iterator[dict[str, Any]]:
        query = quote(f"startDateTime ge {times.graph(start)}", safe=":")
        path = f"/communications/callRecords?$filter={query}"
        for page in self.client.pages("listing callRecords", path, "CallRecords.Read.All"):
            yield from page.get("value") or []


class TranscriptDelta:
    """`GET /users/{id}/onlineMeetings/getAllTranscripts(meetingOrganizerUserId='{id}',
    startDateTime=…)/delta`, every page; the deltaLink is kept per user in Redis."""

    def __init__(self, client: Any, conn: redis.Redis) -> None:
        self.client = client
        self.conn = conn

    def changes(self, user_id: str, start: datetime) -> Iterator[dict[str, Any]]:

        key = f"{DELTA_KEY}:{user_id}"
        stored = self.conn.get(key)
        base = self.client.settings.graph_base_url
        url: str | None = stored.decode() if isinstance(stored, bytes) else (
            f"{base}/users/{user_id}/onlineMeetings/getAllTranscripts("
            f"meetingOrganizerUserId='{user_id}',startDateTime={times.graph(start)})/delta"
        )  # fmt: skip
        delta_link = None
        items: list[dict[str, Any]] = []
        while url:
            try:
                page = self.client.request(
                    f"listing the transcripts of {user_id}", "GET", url,
                    permission="OnlineMeetingTranscript.Read.All", user_id=user_id,
                )  # fmt: skip
            except Exception:
                self.conn.delete(key)  # an expired delta token: start over next pass
                raise
            items += page.get("value") or []
            url = page.get("@odata.nextLink")
            delta_link = page.get("@odata.deltaLink") or delta_link
        yield from items
        if delta_link:  # only once every page went through
            self.conn.set(key, str(delta_link))


@dataclass
class Counts:
    """What one pass or backfill saw: listed, already known, enqueued."""

    found: int = 0
    known: int = 0
    enqueued: int = 0
    recent: int = 0  # left to their notification this time

    def line(self) -> str:
        return f"found {self.found}, already known {self.known}, enqueued {self.enqueued}"


def payload(call_record_id: str, tenant_id: str, now: datetime) -> dict[str, Any]:
    """A job argument shaped like the receiver's callRecord payload (ingest/notifications.py)."""
    cr_id = call_record_id.lower()
    return {
        "subscriptionId": "",
        "tenantId": tenant_id,
        "changeType": "created",
        "resource": f"communications/callRecords/{cr_id}",
        "ids": {"callRecordId": cr_id},
        "kind": "callRecords",
        "receivedAt": now.isoformat(),
        "source": "reconciliation",
    }


def _job_id(resource_id: str) -> str:
    """RQ job ids allow letters, digits, '-' and '_' only: transcript ids are base64."""
    return "r-" + hashlib.sha256(resource_id.encode()).hexdigest()[:40]


def transcript_payload(
    user_id: str, meeting_id: str, transcript_id: str, tenant_id: str, now: datetime
) -> dict[str, Any]:
    """A job argument shaped like the receiver's transcript payload."""
    return {
        "subscriptionId": "",
        "tenantId": tenant_id,
        "changeType": "created",
        "resource": (
            f"users/{user_id}/onlineMeetings('{meeting_id}')/transcripts('{transcript_id}')"
        ),
        "ids": {"meetingId": meeting_id, "transcriptId": transcript_id, "organizerId": user_id},
        "kind": "transcripts",
        "receivedAt": now.isoformat(),
        "source": "reconciliation",
    }


class Reconciler:
    """Enqueues the callRecords the ledger does not know, once each."""

    def __init__(
        self,
        settings: Settings,
        conn: redis.Redis,
        lister: CallRecordLister,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transcripts: TranscriptDelta | None = None,
    ) -> None:

        self.settings = settings
        self.conn = conn
        self.lister = lister
        self.clock = clock
        self.transcripts = transcripts
        self.ledger = Ledger(conn)
        self.queue = Queue(settings.queue, connection=conn, serializer=JSONSerializer)

    def sweep(
        self,
        start: datetime,
        grace_s: float = GRACE_SECONDS,
        progress: Callable[[Counts], None] | None = None,
    ) -> Counts:
        """List callRecords started since `start`; enqueue each one nobody has handled."""
        counts = Counts()
        now = self.clock()
        for record in self.lister.since(start):
            cr_id = str(record.get("id") or "").lower()
            if not cr_id:
                continue
            counts.found += 1
            if self._known(cr_id):
                counts.known += 1
            else:
                ended = times.parse(record.get("endDateTime"))
                if grace_s and ended is not None and (now - ended).total_seconds() < grace_s:
                    counts.recent += 1
                elif self._enqueue(cr_id, now):
                    counts.enqueued += 1
                else:
                    counts.known += 1  # enqueued by an earlier pass, not handled yet
            if progress is not None and counts.found % 50 == 0:
                progress(counts)
        return counts

    def _known(self, cr_id: str) -> bool:
        """Handled (the ledger leads to a meeting) or announced (a notification arrived)."""
        return self.ledger.find(cr_id) is not None or bool(
            self.ledger.resource("callRecords", cr_id)
        )

    def _enqueue(self, cr_id: str, now: datetime, body: dict[str, Any] | None = None) -> bool:

        if not self.conn.set(f"{_ENQUEUED}:{cr_id}", "1", nx=True, ex=ENQUEUED_TTL_SECONDS):
            return False
        body = body or payload(cr_id, (self.settings.graph_tenant_id or "").lower(), now)
        job = self.queue.create_job(JOB, args=[body], job_id=_job_id(cr_id),
                                    description=f"{body['kind']} reconciliation",
                                    **job_options())  # fmt: skip
        self.queue.enqueue_job(job)
        return True

    def sweep_transcripts(self, start: datetime) -> Counts:
        """Each ECI user's new transcripts (delta) whose meeting nobody has handled or queued."""

        counts = Counts()
        if self.transcripts is None:
            return counts
        now = self.clock()
        tenant = (self.settings.graph_tenant_id or "").lower()
        for user in users.all_users(self.conn):
            try:
                changes = list(self.transcripts.changes(user.id, start))
            except UpstreamPermanent as exc:
                # A user the app may not read (403: consent or access policy) must not stop the
                # pass for everyone; the callRecords sweep brings their meetings, which then
                # fail with the fix named.
                log.warning("transcripts_unreadable", user_id=user.id, error=str(exc))
                continue
            for item in changes:
                tid, om_id = str(item.get("id") or ""), str(item.get("meetingId") or "")
                if not tid or not om_id:
                    continue
                counts.found += 1
                call_id = str(item.get("callId") or "").lower()
                handled = self.ledger.alias("tr", tid) or self.ledger.resource("transcripts", tid)
                # The callRecord path (queued by this pass or handled) fetches it too.
                if handled or (call_id and (self._known(call_id) or self.conn.exists(
                        f"{_ENQUEUED}:{call_id}"))):  # fmt: skip
                    counts.known += 1
                    continue
                body = transcript_payload(user.id, om_id, tid, tenant, now)
                if self._enqueue(f"tr-{tid}", now, body):
                    counts.enqueued += 1
                else:
                    counts.known += 1
        return counts

    def run_pass(self) -> Counts:
        """One reconciliation pass from the stored watermark; the watermark moves on only
        after the whole listing went through (a failed pass is repeated whole next time)."""
        now = self.clock()
        raw = self.conn.get(WATERMARK_KEY)
        mark = times.parse(raw.decode()) if isinstance(raw, bytes) else None
        overlap = timedelta(seconds=self.settings.reconcile_overlap_seconds)
        start = (mark or now) - overlap
        oldest = now - timedelta(days=defaults.CALL_RECORDS_RETENTION_DAYS)
        counts = self.sweep(max(start, oldest))
        more = self.sweep_transcripts(max(start, oldest))
        counts.found += more.found
        counts.known += more.known
        counts.enqueued += more.enqueued
        self.conn.set(WATERMARK_KEY, now.isoformat())
        health.reconciled(self.conn, watermark=now.isoformat(), found=counts.found,
                          known=counts.known, enqueued=counts.enqueued,
                          missed=counts.enqueued, last_error="")  # fmt: skip
        if counts.enqueued:
            log.warning("subscription_health_warning", reason="reconciliation found meetings "
                        "no notification announced", missed=counts.enqueued)  # fmt: skip
        return counts
