"""Graph's timestamps read one way: always timezone-aware, at most microseconds.

Graph writes `2026-11-20T15:00:00Z`, `…T15:00:00.1234567Z` (seven fractional digits, one more
than Python reads) and sometimes no offset at all (meaning UTC). Everything the product reads
back from Graph or from its own Redis state goes through `parse`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse(value: object) -> datetime | None:
    """The aware datetime `value` names, or None for anything else (empty, not a string)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00").replace("z", "+00:00"), 1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def graph(when: datetime) -> str:
    """`when` as Graph writes times in filters: UTC, whole seconds, `Z`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_until(value: object, now: datetime) -> int | None:
    """Whole seconds from `now` to the time `value` names (negative when past), or None."""
    when = parse(value)
    return None if when is None else int((when - now).total_seconds())
