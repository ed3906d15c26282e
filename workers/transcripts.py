"""Transcripts: pick one, keep its text once fetched, and pace the re-checks while it is late.

A transcript download is metered, so the text is stored in Redis the first time it is read
and never fetched again for that meeting. While it is absent (no transcript listed, or 404
on content) the pipeline re-checks after growing intervals inside a bounded window
(§5.2), without holding a worker: each re-check is a job scheduled with `enqueue_in`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from core import keys, times

PREFIX = keys.TRANSCRIPT
KEEP_SECONDS = 30 * 24 * 3600  # long enough for every retry of the Salesforce stage
SLACK = timedelta(minutes=15)  # transcription starts and ends within the meeting, give or take


def text_key(meeting_key: str) -> str:
    return f"{PREFIX}:{meeting_key}"


def stored(conn: redis.Redis, meeting_key: str) -> str | None:
    """The transcript text already fetched for the meeting, if any."""
    raw = conn.get(text_key(meeting_key))
    return raw.decode("utf-8") if isinstance(raw, bytes) else None


def store(conn: redis.Redis, meeting_key: str, vtt: str) -> bool:
    """Keep the text; False when it was already kept (the first copy stays)."""
    return bool(conn.set(text_key(meeting_key), vtt.encode("utf-8"), nx=True, ex=KEEP_SECONDS))


def choose(listed: Iterable[Mapping[str, Any]], start: datetime | None = None) -> str | None:
    """The transcript to use among those listed.

    A recurring series lists every occurrence's transcripts: with the occurrence's start
    known, the first transcript created after it (give or take `SLACK`) is this occurrence's;
    without it, the most recent.
    """
    dated: list[tuple[datetime | None, str]] = []
    for item in listed:
        tid = item.get("id")
        if isinstance(tid, str) and tid:
            dated.append((times.parse(item.get("createdDateTime")), tid))
    if start is None:
        floor = datetime.min.replace(tzinfo=UTC)
        return max(dated, key=lambda d: d[0] or floor)[1] if dated else None
    after = [(when, tid) for when, tid in dated if when is None or when >= start - SLACK]
    if not after:
        return None
    ceiling = datetime.max.replace(tzinfo=UTC)
    return min(after, key=lambda d: d[0] or ceiling)[1]


def next_delay(first: float, attempts: int, elapsed: float, window: float) -> float | None:
    """Seconds until the next re-check after `attempts` failed checks, or None when the window
    is over. Intervals double from `first`; the last check falls on the window's end."""
    remaining = window - elapsed
    if remaining <= 0:
        return None
    delay: float = first * 2.0 ** max(0, attempts - 1)
    return min(delay, remaining)
