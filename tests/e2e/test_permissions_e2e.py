"""A consent or access-policy gap on the Graph emulator, through the real msgraph-sdk client: the
meetings it touches end `failed` with the fix in `ingest explain`, without retries or crashes,
and a worker without Organization.Read.All or INTERNAL_DOMAINS stops at start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from core.exceptions import ConfigurationError, UpstreamPermanent
from ingest.explain import render, story
from ingest.reconcile import Reconciler, TranscriptDelta
from tests.e2e.harness import Stack
from tests.e2e.scenarios import BOB, meeting, scenario
from tests.e2e.test_pipeline_e2e import key_of, outcome
from workers import users
from workers.graph.client import GraphClient
from workers.ledger import Ledger
from workers.worker import check_domains

INGEST = str(Path(sys.executable).parent / "ingest")
ROOT = Path(__file__).resolve().parents[2]


def tenant(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    doc["tenant"].update(fields)
    for user in doc["users"]:
        user["eci"] = user["upn"] in ("alice@contoso.com", "bob@contoso.com")
    return doc


def settle(stack: Stack, *mids: str) -> None:
    assert stack.work(lambda: all(outcome(stack, m) for m in mids), 40), {
        m: outcome(stack, m) for m in mids
    }


def no_retries(stack: Stack) -> None:
    queue = Queue("ingest", connection=stack.conn, serializer=JSONSerializer)
    assert FailedJobRegistry(queue=queue).count == 0  # nothing crashed
    assert ScheduledJobRegistry(queue=queue).count == 0  # nothing waits for a retry


class TestAccessPolicyGap:
    """A user outside the Teams application access policy: their meetings fail with the two
    cmdlets named; everyone else's are pushed."""

    def test_user_outside_the_policy(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        doc = tenant(
            scenario(meeting("a1"), meeting("b1", organizer="bob@contoso.com"), meeting("a2")),
            access_policy=["alice@contoso.com"],
        )
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            stack.play()
            settle(stack, "a1", "b1", "a2")
            assert {m: outcome(stack, m) for m in ("a1", "b1", "a2")} == {
                "a1": "pushed", "b1": "failed", "a2": "pushed"
            }  # fmt: skip
            assert sorted(pushed) == sorted(key_of(stack, m) for m in ("a1", "a2"))
            # The product asks for WebVTT (the emulator refuses any other Accept, as Graph does).
            assert stack.stats()["transcript_content_downloads"] == {"a1": 1, "a2": 1}
            doc_b = story(Ledger(stack.conn), stack.world.call_record_id("b1"))
            assert doc_b["outcome"] == "failed"
            for text in (doc_b["outcome_reason"], render(doc_b)):
                assert "New-CsApplicationAccessPolicy" in text
                assert "Grant-CsApplicationAccessPolicy" in text
                assert BOB in text  # the user to grant it to
                assert '-AppIds "emulator-app"' in text  # and the app
            no_retries(stack)
            counts = Ledger(stack.conn).outcome_counts()
            assert (counts["pushed"], counts["failed"]) == (2, 1)


class TestConsentGap:
    """A permission the admin did not consent to: the meeting fails naming that permission."""

    def test_missing_attendance_permission(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        roles = ["CallRecords.Read.All", "OnlineMeetings.Read.All",
                 "OnlineMeetingTranscript.Read.All", "User.Read.All"]  # fmt: skip
        doc = tenant(scenario(meeting("m1")), app_permissions=roles)
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            stack.ensure_subscriptions()
            stack.play("m1")
            settle(stack, "m1")
            doc_m = story(Ledger(stack.conn), stack.world.call_record_id("m1"))
            assert doc_m["outcome"] == "failed"
            assert "403" in doc_m["last_error"]
            assert "OnlineMeetingArtifact.Read.All" in doc_m["outcome_reason"]
            assert "New-CsApplicationAccessPolicy" not in doc_m["outcome_reason"]
            no_retries(stack)
            assert pushed == []

    def test_missing_call_records_permission(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        """Refused at the very first read: the callRecord stands for the meeting in the ledger."""
        roles = ["OnlineMeetings.Read.All", "OnlineMeetingArtifact.Read.All",
                 "OnlineMeetingTranscript.Read.All", "User.Read.All"]  # fmt: skip
        doc = tenant(scenario(meeting("m1")), app_permissions=roles)
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            # Graph refuses the callRecords subscription without the role, so the meeting is
            # reached here as a reconciliation or backfill would reach it.
            stack.world.play(["m1"])
            cid = stack.world.call_record_id("m1")
            queue = Queue("ingest", connection=stack.conn, serializer=JSONSerializer)
            queue.enqueue("workers.jobs.handle_notification", {
                "kind": "callRecords", "ids": {"callRecordId": cid}, "changeType": "created",
                "subscriptionId": "s", "source": "reconciliation"})  # fmt: skip
            stack.work(lambda: outcome(stack, "m1") == "failed", 20)
            doc_m = story(Ledger(stack.conn), cid)
            assert doc_m["outcome"] == "failed"
            assert "CallRecords.Read.All" in doc_m["outcome_reason"]
            no_retries(stack)


class TestUsersAdd:
    """`ingest users add` reads the user with User.Read.All: without it, it says so."""

    def test_missing_user_read_all(self, redis_url: str, tmp_path: Path) -> None:
        doc = tenant(scenario(meeting("m1")), app_permissions=["CallRecords.Read.All"])
        missing = pytest.raises(UpstreamPermanent, match=r"Permission missing.*User\.Read\.All")
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack, missing:
            users.resolve(stack.settings, "bob@contoso.com")


class TestReconciliation:
    """A user outside the access policy does not stop the reconciliation pass for the others."""

    def test_transcript_delta_skips_the_unreadable_user(
        self, redis_url: str, tmp_path: Path, pushed: list[str]
    ) -> None:
        doc = tenant(
            scenario(meeting("a1"), meeting("b1", organizer="bob@contoso.com")),
            access_policy=["alice@contoso.com"],
        )
        with Stack(doc, redis_url, tmp_path, salesforce=True) as stack:
            stack.set_faults(drop_rate=1.0)
            stack.play()
            client = GraphClient(stack.settings)
            try:
                delta = TranscriptDelta(client, stack.conn)
                counts = Reconciler(stack.settings, stack.conn, NoCallRecords(),
                                    transcripts=delta).run_pass()  # fmt: skip
            finally:
                client.close()
            assert (counts.found, counts.enqueued) == (1, 1)  # Alice's; Bob's was refused
            assert stack.work(lambda: outcome(stack, "a1") == "pushed")


class NoCallRecords:
    def since(self, start: Any) -> Iterator[dict[str, Any]]:
        return iter(())


class TestWorkerStart:
    """No internal domains and no Organization.Read.All: the worker stops at start, exit 2."""

    def test_stops_with_one_line(self, redis_url: str, tmp_path: Path) -> None:
        doc = tenant(scenario(meeting("m1")), app_permissions=["CallRecords.Read.All"])
        with Stack(doc, redis_url, tmp_path, salesforce=True, internal_domains=()) as stack:
            with pytest.raises(ConfigurationError, match=r"Organization\.Read\.All"):
                check_domains(stack.settings, stack.conn)
            s = stack.settings
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("GRAPH_", "SF_", "INGEST_", "POLICY_", "INTERNAL_"))
            }
            env.update(REDIS_URL=redis_url, PYTHONPATH=str(ROOT),
                       GRAPH_TENANT_ID=s.graph_tenant_id or "",
                       GRAPH_CLIENT_ID="emulator-app", GRAPH_CLIENT_SECRET="emulator-secret",
                       GRAPH_BASE_URL=s.graph_base_url, GRAPH_AUTHORITY=s.graph_authority,
                       INGEST_CA_BUNDLE=str(s.ca_bundle),
                       SF_INSTANCE_URL="https://127.0.0.1:9", SF_CLIENT_ID="app",
                       SF_CLIENT_SECRET="secret")  # fmt: skip
            done = subprocess.run([INGEST, "worker", "--burst"], env=env, capture_output=True,
                                  text=True, timeout=60)  # fmt: skip
            assert done.returncode == 2, done.stderr
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, done.stderr
            assert "INTERNAL_DOMAINS" in lines[0] and "Organization.Read.All" in lines[0]

    def test_starts_with_the_permission(self, redis_url: str, tmp_path: Path) -> None:
        with Stack(
            scenario(meeting("m1")), redis_url, tmp_path, salesforce=True, internal_domains=()
        ) as stack:
            check_domains(stack.settings, stack.conn)  # reads and keeps the verified domains
            assert stack.graph_requests() == {"GET /v1.0/organization": 1}
