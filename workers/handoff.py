"""The hand-off to the Salesforce stage: a ResolvedMeeting kept as JSON, and its push job.

The meeting (transcript included) is stored before the push job is queued, so a retry of
the push never needs Graph again.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import redis
from rq import Queue, Retry

from core import defaults, keys
from workers.meeting import ResolvedMeeting, ResolvedParticipant, ResolvedTranscript

PREFIX = keys.RESOLVED
KEEP_SECONDS = 30 * 24 * 3600
PUSH_FUNCTION = keys.JOB_PUSH_MEETING
FILL_FUNCTION = keys.JOB_FILL_CALL_RECORD
PUSH_RETRY_INTERVALS = (10, 60, 300)


def resolved_key(meeting_key: str) -> str:
    return f"{PREFIX}:{meeting_key}"


def to_json(meeting: ResolvedMeeting) -> str:
    doc = dataclasses.asdict(meeting)
    doc["start"] = meeting.start.isoformat()
    doc["end"] = meeting.end.isoformat()
    return json.dumps(doc)


def from_json(text: str | bytes) -> ResolvedMeeting:
    doc: dict[str, Any] = json.loads(text)
    known = {f.name for f in dataclasses.fields(ResolvedParticipant)}
    people = tuple(
        ResolvedParticipant(**{k: v for k, v in p.items() if k in known})
        for p in doc.pop("participants")
    )
    if "transcripts" in doc:
        texts = tuple(ResolvedTranscript(id=t["id"], vtt=t["vtt"]) for t in doc.pop("transcripts"))
    else:  # saved before a meeting could have several transcripts
        texts = (ResolvedTranscript(id=doc["transcript_id"], vtt=doc["transcript_vtt"]),)
    fields = {f.name for f in dataclasses.fields(ResolvedMeeting)} - {"transcripts"}
    doc = {k: v for k, v in doc.items() if k in fields}
    doc["start"] = datetime.fromisoformat(doc["start"])
    doc["end"] = datetime.fromisoformat(doc["end"])
    return ResolvedMeeting(participants=people, transcripts=texts, **doc)


def save(conn: redis.Redis, meeting: ResolvedMeeting) -> None:
    conn.set(resolved_key(meeting.meeting_key), to_json(meeting), ex=KEEP_SECONDS)


def load(conn: redis.Redis, meeting_key: str) -> ResolvedMeeting | None:
    raw = conn.get(resolved_key(meeting_key))
    return from_json(raw) if isinstance(raw, bytes) else None


def enqueue_push(queue: Queue, meeting_key: str, transcripts: int = 0) -> str:
    """Queue the Salesforce push for the meeting; returns the job id. A push again, with
    more `transcripts` than the first, is a job of its own."""
    job = queue.enqueue(
        PUSH_FUNCTION,
        meeting_key,
        job_id=f"push-{meeting_key}" + (f"-t{transcripts}" if transcripts else ""),
        job_timeout=defaults.JOB_TIMEOUT_SECONDS,
        result_ttl=defaults.JOB_RESULT_TTL_SECONDS,
        retry=Retry(max=len(PUSH_RETRY_INTERVALS), interval=list(PUSH_RETRY_INTERVALS)),
    )
    return str(job.id)


def enqueue_fill(queue: Queue, meeting_key: str) -> str:
    """Queue the fill-in of the callRecord id of a meeting pushed without it; the job id."""
    job = queue.enqueue(
        FILL_FUNCTION,
        meeting_key,
        job_id=f"callrecord-{meeting_key}",
        job_timeout=defaults.JOB_TIMEOUT_SECONDS,
        result_ttl=defaults.JOB_RESULT_TTL_SECONDS,
        retry=Retry(max=len(PUSH_RETRY_INTERVALS), interval=list(PUSH_RETRY_INTERVALS)),
    )
    return str(job.id)
