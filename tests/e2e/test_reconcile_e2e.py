"""The clock and backfill against the Graph emulator: renewal before expiry, re-creation,
reconciliation of dropped notifications, and backfill of a past range."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest import backfill, clock, health
from ingest.reconcile import CallRecords, Reconciler, TranscriptDelta
from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from workers import registry
from workers.graph.client import GraphClient
from workers.ledger import Ledger
from workers.subscriptions import GraphSubscriptions

OVERLAP = 4 * 86400.0  # the meetings below started two days ago
STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def outcome(stack: Stack, mid: str) -> str | None:
    ledger = Ledger(stack.conn)
    key = ledger.find(stack.world.call_record_id(mid)) or ledger.find(
        stack.world.online_meeting_id(mid)
    )
    return ledger.meeting(key).get("outcome") if key else None


def graph_subs(stack: Stack) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in stack.control("subscriptions")["value"]}


def call_records(stack: Stack) -> registry.Subscription:
    return next(s for s in registry.load_all(stack.conn) if s.kind == "callRecords")


def two_meetings() -> dict[str, Any]:
    """Two meetings of two days ago (callRecords are kept 30 days)."""
    times = {"start": STARTED.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "end": (STARTED + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    return scenario(meeting("m1", **times), meeting("m2", organizer="bob@contoso.com", **times))


class TestClockRenewal:
    """The clock renews a subscription nearing expiry and re-creates one Graph deleted."""

    def test_renewed_before_it_lapses(self, redis_url: str, tmp_path: Path) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            sub = call_records(stack)
            stack.control("advance", {"seconds": (4230 - 15 - 50) * 60})  # 50 minutes left
            client = GraphClient(stack.settings)
            try:
                ticker = clock.build(stack.settings, stack.conn, client, now=stack.clock.now)
                ticker.tick(time.monotonic())
            finally:
                client.close()
            assert ticker.passes["renew"] == 1
            stack.control("advance", {"seconds": 2 * 3600})  # the old expiry is long past
            graph = graph_subs(stack)
            assert sub.id in graph  # still alive: renewed, not re-created
            assert graph[sub.id]["expirationDateTime"] > sub.expires_at
            assert health.subscriptions(stack.conn)[0]["last_renewal"]

    def test_deleted_in_graph_is_recreated(self, redis_url: str, tmp_path: Path) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            sub = call_records(stack)
            api = GraphSubscriptions(stack.settings)
            api.delete(sub.id)  # on the Graph side only: the registry still holds it
            client = GraphClient(stack.settings)
            try:
                clock.build(stack.settings, stack.conn, client).tick(time.monotonic())
            finally:
                client.close()
                api.close()
            fresh = call_records(stack)
            graph = graph_subs(stack)
            assert fresh.id != sub.id and sub.id not in graph
            assert graph[fresh.id]["clientState"] == fresh.client_state


class TestReconciliation:
    """Notifications all dropped: a reconciliation pass brings the meetings into the ledger."""

    def test_dropped_notifications_reconciled(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        with Stack(two_meetings(), redis_url, tmp_path, salesforce=True,
                   reconcile_overlap_seconds=OVERLAP) as stack:  # fmt: skip
            stack.ensure_subscriptions()
            stack.set_faults(drop_rate=1.0)
            stack.play()
            time.sleep(0.5)  # what the emulator would deliver, it drops
            assert outcome(stack, "m1") is None and outcome(stack, "m2") is None
            client = GraphClient(stack.settings)
            try:
                work = Reconciler(stack.settings, stack.conn, CallRecords(client))
                first = work.run_pass()
                assert (first.found, first.known, first.enqueued) == (2, 0, 2)
                assert stack.work(lambda: bool(outcome(stack, "m1") and outcome(stack, "m2")))
                assert outcome(stack, "m1") == "pushed"
                assert outcome(stack, "m2") == "skipped"  # Bob is not an ECI user
                assert len(pushed) == 1
                second = work.run_pass()
                assert (second.found, second.known, second.enqueued) == (2, 2, 0)
            finally:
                client.close()
            assert health.reconciliation(stack.conn)["missed"] == 0


class NoCallRecords:
    """A callRecords listing that finds nothing: only the transcript delta can help."""

    def since(self, start: datetime) -> Iterator[dict[str, Any]]:
        return iter(())


class TestTranscriptDelta:
    """The getAllTranscripts delta of each ECI user finds transcripts no notification announced."""

    def test_delta_brings_transcripts(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        with Stack(two_meetings(), redis_url, tmp_path, salesforce=True,
                   reconcile_overlap_seconds=OVERLAP) as stack:  # fmt: skip
            stack.set_faults(drop_rate=1.0)
            stack.play()
            client = GraphClient(stack.settings)
            try:
                delta = TranscriptDelta(client, stack.conn)
                work = Reconciler(stack.settings, stack.conn, NoCallRecords(), transcripts=delta)
                first = work.run_pass()
                assert (first.found, first.enqueued) == (
                    1,
                    1,
                )  # Alice's meeting; Bob is no ECI user
                assert stack.work(lambda: outcome(stack, "m1") == "pushed")
                assert work.run_pass().found == 0  # the delta link: nothing new since
            finally:
                client.close()
            assert len(pushed) == 1


class TestBackfill:
    """`ingest backfill --since` enqueues past meetings the ledger does not know, once."""

    def test_backfill_past_range(
        self,
        redis_url: str,
        tmp_path: Path,
        pushed: list[str],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        with Stack(two_meetings(), redis_url, tmp_path, salesforce=True) as stack:
            stack.set_faults(drop_rate=1.0)
            stack.play()
            args = argparse.Namespace(since=(STARTED - timedelta(days=1)).date().isoformat())
            assert backfill.run(args, stack.settings) == 0
            out = capsys.readouterr()
            assert "found 2, already known 0, enqueued 2" in out.out
            assert "listing callRecords" in out.err
            assert stack.work(lambda: bool(outcome(stack, "m1") and outcome(stack, "m2")))
            assert pushed and outcome(stack, "m1") == "pushed"
            assert backfill.run(args, stack.settings) == 0
            assert "found 2, already known 2, enqueued 0" in capsys.readouterr().out
