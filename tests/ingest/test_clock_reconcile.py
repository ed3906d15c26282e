"""Reconciliation and backfill without Graph: what is enqueued, what is skipped, bad dates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from core.settings import Settings
from ingest import cli, health
from ingest.backfill import parse_since
from ingest.reconcile import WATERMARK_KEY, Reconciler
from workers.ledger import Ledger

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class FakeLister:
    """callRecords as Graph lists them; remembers each `since` asked for."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.asked: list[datetime] = []

    def since(self, start: datetime) -> Iterator[dict[str, Any]]:
        self.asked.append(start)
        yield from self.records


def record(cr_id: str, ended_ago: timedelta) -> dict[str, Any]:
    end = NOW - ended_ago
    return {"id": cr_id, "startDateTime": (end - timedelta(minutes=30)).isoformat(),
            "endDateTime": end.isoformat()}  # fmt: skip


def queued(conn: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    queue = Queue(settings.queue, connection=conn, serializer=JSONSerializer)
    return [job.args[0] for job in queue.get_jobs()]


class TestReconcilePass:
    """Unknown callRecords are enqueued once, shaped like the receiver's; known ones are not."""

    def test_enqueues_unknown_once(self, settings: Settings, redis_conn: redis.Redis) -> None:
        Ledger(redis_conn).claim([("cr", "known-1")], "meeting-1")
        Ledger(redis_conn).record_notification(
            {"kind": "callRecords", "subscriptionId": "s1", "ids": {"callRecordId": "seen-1"}}
        )
        lister = FakeLister([
            record("KNOWN-1", timedelta(hours=2)), record("seen-1", timedelta(hours=2)),
            record("New-1", timedelta(hours=2)), record("fresh-1", timedelta(minutes=5)),
        ])  # fmt: skip
        work = Reconciler(settings, redis_conn, lister, clock=lambda: NOW)
        counts = work.run_pass()
        assert (counts.found, counts.known, counts.enqueued, counts.recent) == (4, 2, 1, 1)
        jobs = queued(redis_conn, settings)
        assert [j["ids"] for j in jobs] == [{"callRecordId": "new-1"}]
        assert jobs[0]["kind"] == "callRecords" and jobs[0]["changeType"] == "created"
        assert jobs[0]["resource"] == "communications/callRecords/new-1"
        assert work.run_pass().enqueued == 0  # enqueued already, not handled yet
        assert len(queued(redis_conn, settings)) == 1
        assert health.reconciliation(redis_conn)["warnings"] == []  # the last pass found none

    def test_watermark_overlaps(self, settings: Settings, redis_conn: redis.Redis) -> None:
        lister = FakeLister([])
        s = Settings(**{**settings.__dict__, "reconcile_overlap_seconds": 3600.0})
        Reconciler(s, redis_conn, lister, clock=lambda: NOW).run_pass()
        later = NOW + timedelta(minutes=15)
        Reconciler(s, redis_conn, lister, clock=lambda: later).run_pass()
        assert lister.asked == [NOW - timedelta(hours=1), NOW - timedelta(hours=1)]
        assert redis_conn.get(WATERMARK_KEY) == later.isoformat().encode()

    def test_missed_meetings_warn(self, settings: Settings, redis_conn: redis.Redis) -> None:
        lister = FakeLister([record("lost-1", timedelta(hours=3))])
        Reconciler(settings, redis_conn, lister, clock=lambda: NOW).run_pass()
        assert health.reconciliation(redis_conn)["missed"] == 1
        assert health.warnings(redis_conn) == [
            "reconciliation: 1 meetings no notification announced"
        ]


class TestBackfillDates:
    """--since: an invalid or future date is bad usage (2); one past 30 days is clamped."""

    @pytest.mark.parametrize("raw", ["yesterday", "2026-13-01", "", "2026-11-26T25:00"])
    def test_invalid_date_exits_2(self, raw: str, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main(["backfill", "--since", raw]) == 2
        assert "--since" in capsys.readouterr().err

    def test_future_is_refused(self) -> None:
        with pytest.raises(ValueError, match="future"):
            parse_since("2026-12-01", NOW)

    def test_clamped_to_retention(self) -> None:
        since, warning = parse_since("2026-09-01", NOW)
        assert since == NOW - timedelta(days=30)
        assert warning is not None and "30 days" in warning
        since, warning = parse_since("2026-11-20T08:00:00Z", NOW)
        assert since == datetime(2026, 11, 20, 8, 0, tzinfo=UTC) and warning is None
        assert parse_since("2026-11-20", NOW)[0] == datetime(2026, 11, 20, tzinfo=UTC)
