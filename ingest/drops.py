"""Dropped items: tallied per request, logged as one `security_event`, rate-limited per client.

A forged body may hold thousands of bad items; one log line per item let a single request
write hundreds of megabytes. Instead each request's drops are counted by reason with a few
samples, and a client gets at most one `security_event` line per interval: what it sent in
between is summed into its next line (`suppressed_requests`, `suppressed_items`). The
metrics count every item either way.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from core import defaults

log = structlog.get_logger("ingest.receiver")

MAX_SAMPLES = 3
_FIELDS = (("subscriptionid", "subscription_id"), ("tenantid", "tenant_id"),
           ("resource", "resource"))  # fmt: skip
MAX_CLIENTS = 10_000  # clients remembered for the rate limit; the oldest is forgotten first


@dataclass
class DropTally:
    """One request's dropped items: counts by reason, the first few items' ids, notes."""

    counts: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, str | None]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, item: object) -> None:
        self.counts[reason] += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append({"reason": reason, **_ids(item)})

    def merge(self, other: DropTally) -> None:
        self.counts.update(other.counts)
        self.samples.extend(other.samples[: MAX_SAMPLES - len(self.samples)])
        self.notes.update(other.notes)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _ids(item: object) -> dict[str, str | None]:
    """The item's ids for a log line, truncated; never its clientState or content."""
    out: dict[str, str | None] = {name: None for _, name in _FIELDS}
    if not isinstance(item, dict):
        return out
    wanted = dict(_FIELDS)
    for key, value in item.items():
        name = wanted.get(key.lower()) if isinstance(key, str) else None
        if name is not None and isinstance(value, str):
            out[name] = value[:128]
    return out


@dataclass
class _Client:
    logged_at: float
    suppressed_requests: int = 0
    suppressed_items: int = 0


class SecurityLog:
    """Writes a request's drops as one `security_event`, at most one per client per interval."""

    def __init__(
        self,
        interval_s: float = defaults.SECURITY_LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._clients: dict[str, _Client] = {}

    def dropped(self, client: str, tally: DropTally) -> bool:
        """Log the tally unless this client was logged less than an interval ago; True if
        a line was written."""
        now = self.clock()
        state = self._clients.get(client)
        if state is not None and now - state.logged_at < self.interval_s:
            state.suppressed_requests += 1
            state.suppressed_items += tally.total
            return False
        extra: dict[str, Any] = {}
        if state is not None and state.suppressed_requests:
            extra = {"suppressed_requests": state.suppressed_requests,
                     "suppressed_items": state.suppressed_items}  # fmt: skip
        self._clients.pop(client, None)  # re-inserted last: the dict is oldest-first
        self._clients[client] = _Client(logged_at=now)
        while len(self._clients) > MAX_CLIENTS:
            del self._clients[next(iter(self._clients))]
        log.warning(
            "security_event",
            event_type="notifications_dropped",
            client=client,
            dropped=tally.total,
            reasons=dict(tally.counts),
            samples=tally.samples,
            **tally.notes,
            **extra,
        )
        return True
