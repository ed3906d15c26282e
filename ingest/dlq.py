"""`ingest dlq list [--json]` and `ingest dlq requeue JOB_ID|--all`: failed jobs, and again.

A job lands in RQ's failed registry when its retries are spent (a transient failure that
lasted) or on an error the product did not expect; a permanent one (403, schema) ends the
job as `failed` in the ledger instead and is not here. Requeue keeps the job's id, so the
job runs through the same dedupe keys, meeting lock and Salesforce upserts by external id
as the first time: running it again cannot write a meeting twice.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.results import Result
from rq.serializers import JSONSerializer

from core import keys, logs
from core.exceptions import BadInput
from core.settings import Settings
from workers.ledger import Ledger

STAGES = {
    keys.JOB_NOTIFICATION: "notification",
    keys.JOB_LIFECYCLE: "lifecycle",
    keys.JOB_CHECK_TRANSCRIPT: "transcript",
    keys.JOB_PUSH_MEETING: "salesforce",
}
MAX_MESSAGE = 500


@dataclass(frozen=True)
class FailedJob:
    """One failed job as an operator reads it: no payload, no secrets."""

    id: str
    stage: str
    meeting: str | None
    resource: str | None
    error_class: str
    error: str
    attempts: int
    first_failure: str | None
    last_failure: str | None


def _error(exc_string: str) -> tuple[str, str]:
    """The exception's class and message from the last line of a traceback."""
    last = next((ln for ln in reversed(exc_string.strip().splitlines()) if ln.strip()), "")
    name, sep, message = last.partition(": ")
    if not sep or " " in name:
        return "", logs.scrub_text(last)[:MAX_MESSAGE]
    return name.rpartition(".")[2], logs.scrub_text(message.strip())[:MAX_MESSAGE]


def _resource(job: Job) -> str | None:
    first = job.args[0] if job.args else None
    if isinstance(first, dict):
        ids = first.get("ids") or {}
        found = ids.get("callRecordId") or ids.get("meetingId") or first.get("subscriptionId")
        return str(found) if found else None
    return str(first) if isinstance(first, str) else None


def describe(job: Job, ledger: Ledger) -> FailedJob:
    failures = [r for r in job.results() if r.type in (Result.Type.FAILED,)]
    failures.sort(key=lambda r: r.created_at)
    latest = failures[-1].exc_string if failures else None
    error_class, message = _error(latest or "")
    resource = _resource(job)
    meeting = ledger.find(resource) if resource else None
    return FailedJob(
        id=job.id,
        stage=STAGES.get(job.func_name or "", job.func_name or "?"),
        meeting=meeting,
        resource=resource,
        error_class=error_class,
        error=message or "(no error recorded)",
        attempts=len(failures),
        first_failure=failures[0].created_at.isoformat() if failures else None,
        last_failure=failures[-1].created_at.isoformat() if failures else None,
    )


def failed(conn: redis.Redis, queue: Queue, limit: int | None = None) -> list[FailedJob]:
    """The failed jobs, oldest first; the first `limit` of them when given (the ops page)."""
    ledger = Ledger(conn)
    out = []
    end = -1 if limit is None else limit - 1
    for job_id in FailedJobRegistry(queue=queue).get_job_ids(0, end):
        try:
            job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
        except NoSuchJobError:
            continue
        out.append(describe(job, ledger))
    return out


def requeue(queue: Queue, job_ids: list[str]) -> list[str]:
    registry = FailedJobRegistry(queue=queue)
    known = set(registry.get_job_ids())
    missing = [j for j in job_ids if j not in known]
    if missing:
        raise BadInput(f"no failed job {missing[0]}; `ingest dlq list` shows the failed jobs")
    for job_id in job_ids:
        registry.requeue(job_id)
    return job_ids


def _render(jobs: list[FailedJob]) -> str:
    if not jobs:
        return "no failed jobs"
    lines = []
    for j in jobs:
        lines.append(f"{j.id}  {j.stage:<12} meeting {j.meeting or '-'}  "
                     f"failed {j.attempts}x, last {j.last_failure or '?'}")  # fmt: skip
        lines.append(f"    {j.error_class or 'error'}: {j.error}")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    conn = redis.Redis.from_url(settings.redis_url)
    queue = Queue(settings.queue, connection=conn, serializer=JSONSerializer)
    try:
        if args.action == "list":
            jobs = failed(conn, queue)
            doc: dict[str, Any] = {"failed": [asdict(j) for j in jobs]}
            print(json.dumps(doc) if args.json else _render(jobs))
            return 0
        if bool(args.job_id) == bool(args.all):
            print("ingest: dlq requeue needs one JOB_ID or --all (see --help)", file=sys.stderr)
            return 2
        ids = FailedJobRegistry(queue=queue).get_job_ids() if args.all else [args.job_id]
        done = requeue(queue, ids)
        if args.json:
            print(json.dumps({"requeued": done}))
        else:
            print("\n".join(f"requeued {j}" for j in done) if done else "no failed jobs")
        return 0
    finally:
        conn.close()
