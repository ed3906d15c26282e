"""`ingest backfill --since ISO_DATE`: past meetings through the reconciliation path (DESIGN §5.4).

Lists callRecords started since the date and enqueues each one the ledger does not know, as
the clock's reconciliation does. Graph keeps callRecords 30 days: an older date is clamped
with a warning. Progress goes to stderr, the summary line to stdout.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

import redis

from core import defaults, times
from core.exceptions import ConfigurationError
from core.settings import Settings
from ingest.reconcile import CallRecords, Counts, Reconciler
from workers.graph.client import GraphClient

EXIT_USAGE = 2


def parse_since(raw: str, now: datetime) -> tuple[datetime, str | None]:
    """The start of the backfill and a warning when it was clamped; ValueError when invalid."""
    text = raw.strip().replace("Z", "+00:00").replace("z", "+00:00")
    when = datetime.fromisoformat(text)  # a date alone means its midnight
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when > now:
        raise ValueError("is in the future")
    oldest = now - timedelta(days=defaults.CALL_RECORDS_RETENTION_DAYS)
    if when < oldest:
        return oldest, (
            f"Graph keeps callRecords {defaults.CALL_RECORDS_RETENTION_DAYS} days: "
            f"backfilling from {times.graph(oldest)} instead of {raw}"
        )
    return when, None


def run(args: argparse.Namespace, settings: Settings) -> int:

    now = datetime.now(UTC)
    try:
        since, warning = parse_since(str(args.since), now)
    except ValueError as exc:
        print(f"ingest: --since {args.since!r} is not a valid ISO date ({exc}); "
              "use e.g. 2026-11-01 or 2026-11-01T08:00:00Z", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    settings.require_graph()
    if warning:
        print(f"ingest: warning: {warning}", file=sys.stderr)
    conn = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
    client = GraphClient(settings)

    def progress(counts: Counts) -> None:
        print(f"backfill: {counts.line()} so far", file=sys.stderr, flush=True)

    try:
        print(f"backfill: listing callRecords started since {times.graph(since)}",
              file=sys.stderr)  # fmt: skip
        counts = Reconciler(settings, conn, CallRecords(client)).sweep(
            since, grace_s=0, progress=progress
        )
    except ConfigurationError:
        raise
    finally:
        client.close()
        conn.close()
    print(f"backfill: {counts.line()}")
    return 0
