"""The emulator's adjustable clock, shared by the World, tokens and subscriptions (time travel)."""

from __future__ import annotations

import datetime as dt
import time


class Clock:
    """Wall time plus an offset that `POST /_emulator/advance` moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self(), dt.UTC)


def iso(ts: float) -> str:
    """A POSIX time as Graph writes it: ISO 8601 UTC with `Z` (7 fractional digits)."""
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}0Z"


def parse_iso(value: str) -> float:
    """Parse Graph's ISO 8601 (with `Z`, an offset, or naive meaning UTC, up to 7 digits)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python accepts at most 6 fractional digits; Graph writes 7.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tail}"
    d = dt.datetime.fromisoformat(text)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.timestamp()
