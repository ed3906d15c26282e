"""What the ops page shows, read from Redis in one go (synchronously: the page runs it in a thread).

Every panel comes from the product's own readers (the subscription registry and its health,
RQ's registries, the dead-letter listing, the ledger, the usage counters), so the page and
`ingest status` / `ingest dlq` / `ingest explain` can never disagree. Nothing secret is read
into the snapshot: subscriptions without their clientState, failed jobs without payloads,
meetings without transcript text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from core import defaults
from core.exceptions import BadInput
from core.settings import Settings
from ingest import dlq, explain, health
from ingest.checkup import config as checkup_config
from ingest.checkup import store as checkup_store
from workers import ledger as ledger_mod
from workers import usage
from workers.ledger import Ledger

MEETING_FIELDS = ("subject", "start", "decision", "reason", "explanation", "outcome",
                  "outcome_reason", "outcome_at")  # fmt: skip
MAX_SEARCH = 256
MAX_FAILED = 50  # the page lists this many; `ingest dlq list` lists all


@dataclass(frozen=True)
class Snapshot:
    """The page's data at one moment."""

    at: datetime
    subscriptions: list[dict[str, Any]]
    queue: str
    queues: dict[str, int]
    workers: int
    throughput: list[usage.Minute]
    failed: list[dlq.FailedJob]
    meetings: list[dict[str, str]]
    outcomes: dict[str, int]
    calls: dict[str, int]
    warnings: list[str]
    search: str | None = None
    story: str | None = None
    search_error: str | None = None
    notes: list[str] = field(default_factory=list)


class FailedCache:
    """Failed jobs as described once: describing one costs about five Redis round trips, and
    a page polled every second would repeat them for jobs that have not changed. An entry is
    keyed by the job's id and when its last run ended, so a job that failed again (after a
    requeue) is described again; checking costs one pipelined round trip for the page."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], dlq.FailedJob] = {}

    def failed(self, conn: redis.Redis, queue: Queue, limit: int) -> list[dlq.FailedJob]:
        ids = FailedJobRegistry(queue=queue).get_job_ids(0, limit - 1)
        with conn.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(Job.key_for(job_id), "ended_at")
            ended = pipe.execute()
        wanted = [(job_id, (end or b"").decode()) for job_id, end in zip(ids, ended, strict=True)]
        ledger = Ledger(conn)
        for entry in wanted:
            if entry not in self._known:
                try:
                    job = Job.fetch(entry[0], connection=conn, serializer=JSONSerializer)
                except NoSuchJobError:
                    continue  # requeued or expired since the registry was read
                self._known[entry] = dlq.describe(job, ledger)
        self._known = {entry: self._known[entry] for entry in wanted if entry in self._known}
        return [self._known[entry] for entry in wanted if entry in self._known]


def doctor_warnings(settings: Settings, conn: redis.Redis) -> list[str]:
    """`ingest doctor`'s checks that cost no Graph or Salesforce request: the settings a live
    setup needs, and Redis persistence (one CONFIG GET or INFO)."""
    out = []
    lacking = checkup_config.missing(settings)
    if lacking:
        out.append(f"settings not set: {', '.join(lacking)} (`ingest doctor` checks a live setup)")
    for check in checkup_store.persistence(conn):
        if not check.ok:
            out.append(f"{check.name}: {check.detail}; fix: {check.fix}")
    return out


def _meetings(conn: redis.Redis, ledger: Ledger) -> list[dict[str, str]]:
    found = ledger.latest(defaults.OPS_LATEST_MEETINGS)
    with conn.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.hmget(ledger_mod.meeting_hash(key), list(MEETING_FIELDS))
        rows = pipe.execute()
    out = []
    for key, row in zip(found, rows, strict=True):
        entry = {"meeting_key": key}
        entry.update({k: v.decode() if v else "" for k, v in zip(MEETING_FIELDS, row, strict=True)})
        out.append(entry)
    return out


def _search(ledger: Ledger, search: str | None) -> tuple[str | None, str | None]:
    """The `explain` story of the meeting searched for, or why there is none."""
    if not search:
        return None, None
    try:
        return explain.render(explain.story(ledger, search[:MAX_SEARCH])), None
    except BadInput as exc:
        return None, str(exc)


def collect(
    settings: Settings,
    conn: redis.Redis,
    search: str | None = None,
    cache: FailedCache | None = None,
) -> Snapshot:
    now = datetime.now(UTC)
    queue = Queue(settings.queue, connection=conn, serializer=JSONSerializer)
    ledger = Ledger(conn)
    subs = health.subscriptions(conn, now)
    failed = (cache or FailedCache()).failed(conn, queue, MAX_FAILED)
    workers = Worker.count(queue=queue)
    warnings = health.warnings(conn, now)
    if not subs:
        warnings.append("no subscriptions: run `ingest subscriptions ensure`")
    failed_count = FailedJobRegistry(queue=queue).count
    if failed_count:
        warnings.append(f"{failed_count} failed jobs: see below, or `ingest dlq list`")
    if not workers:
        warnings.append("no worker is running: notifications wait in the queue")
    warnings += doctor_warnings(settings, conn)
    story, error = _search(ledger, search)
    return Snapshot(
        at=now,
        subscriptions=subs,
        queue=settings.queue,
        queues={
            "waiting": queue.count,
            "running": StartedJobRegistry(queue=queue).count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
            "failed": failed_count,
        },
        workers=workers,
        throughput=usage.throughput(conn, 60, now.timestamp()),
        failed=failed,
        meetings=_meetings(conn, ledger),
        outcomes=ledger.outcome_counts(),
        calls=usage.calls_today(conn, now.timestamp()),
        warnings=warnings,
        search=search,
        story=story,
        search_error=error,
    )
