"""Transcripts: pick a meeting's, keep each text once fetched, and pace the re-checks while late.

A meeting has one transcript per stretch of transcription (stopped and started again: several).
A transcript download is metered, so each text is stored in Redis the first time it is read
and never fetched again for that meeting. While one is absent (none listed, or 404 on
content) the pipeline re-checks after growing intervals inside a bounded window (§5.2),
without holding a worker: each re-check is a job scheduled with `enqueue_in`.
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


def text_key(meeting_key: str, transcript_id: str) -> str:
    return f"{PREFIX}:{meeting_key}:{transcript_id}"


def stored(conn: redis.Redis, meeting_key: str, transcript_id: str) -> str | None:
    """The text of one of the meeting's transcripts, if already fetched."""
    raw = conn.get(text_key(meeting_key, transcript_id))
    return raw.decode("utf-8") if isinstance(raw, bytes) else None


def store(conn: redis.Redis, meeting_key: str, transcript_id: str, vtt: str) -> bool:
    """Keep the text; False when it was already kept (the first copy stays)."""
    key = text_key(meeting_key, transcript_id)
    return bool(conn.set(key, vtt.encode("utf-8"), nx=True, ex=KEEP_SECONDS))


def select(
    listed: Iterable[Mapping[str, Any]],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[str]:
    """The ids of the occurrence's transcripts among those listed, in the order made.

    Graph lists the newest first, and a recurring series lists every occurrence's: with the
    occurrence's start known, its transcripts are the first one made after the start (give or
    take `SLACK`) and every later one made before the meeting ended (or, when Graph dates them
    later than the end, within `SLACK` of that first one). Without a start, the most recent.
    """
    dated: list[tuple[datetime | None, str]] = []
    for item in listed:
        tid = item.get("id")
        if isinstance(tid, str) and tid and all(tid != t for _, t in dated):
            dated.append((times.parse(item.get("createdDateTime")), tid))
    floor, ceiling = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    if start is None:
        return [max(dated, key=lambda d: d[0] or floor)[1]] if dated else []
    after = sorted(
        ((when, tid) for when, tid in dated if when is None or when >= start - SLACK),
        key=lambda d: d[0] or ceiling,
    )
    if not after:
        return []
    first = after[0][0] or ceiling
    last = max(first, end or first) + SLACK if first != ceiling else ceiling
    return [tid for when, tid in after if when is None or when <= last]


def next_delay(first: float, attempts: int, elapsed: float, window: float) -> float | None:
    """Seconds until the next re-check after `attempts` failed checks, or None when the window
    is over. Intervals double from `first`; the last check falls on the window's end."""
    remaining = window - elapsed
    if remaining <= 0:
        return None
    delay: float = first * 2.0 ** max(0, attempts - 1)
    return min(delay, remaining)
