"""Redis wiped mid-run (FLUSHDB) on the emulators: every eligible meeting reaches Salesforce
exactly once.

Graph emulator, receiver and Salesforce emulator over HTTPS, the real clock passes
(ingest/clock.py `build`) and workers. One meeting is handled before the wipe; two more end
while Redis is empty, and the receiver answers their notifications `503`. One clock tick
later the users, tokens and watermark are back, the subscriptions are new, and the
reconciliation pass has enqueued what the wipe took.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulators.salesforce.app import Config
from emulators.tls import ensure_ca
from ingest import clock
from tests.e2e.harness import Stack
from tests.e2e.scenarios import ALICE, meeting, scenario
from tests.emulators.salesforce_harness import Server
from workers import registry, users
from workers.graph.client import GraphClient
from workers.ledger import Ledger

OVERLAP = 4 * 86400.0  # the meetings started two days ago
STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def _at(minutes: int) -> dict[str, str]:
    start = STARTED + timedelta(minutes=minutes)
    return {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip


def four_meetings() -> dict[str, Any]:
    """Alice's three meetings with Carol (eligible) and one of Bob's (no ECI user)."""
    return scenario(meeting("m1", **_at(0)), meeting("m2", **_at(60)), meeting("m3", **_at(120)),
                    meeting("b1", organizer="bob@contoso.com", **_at(180)))  # fmt: skip


@pytest.fixture
def salesforce(tmp_path: Path) -> Iterator[Server]:
    ensure_ca(tmp_path / "ca")  # the CA the Stack's Graph emulator uses too
    with Server(Config(), tmp_path / "ca") as server:
        yield server


def outcome(stack: Stack, mid: str) -> str | None:
    ledger = Ledger(stack.conn)
    key = ledger.find(stack.world.call_record_id(mid))
    return ledger.meeting(key).get("outcome") if key else None


def outcome_key(stack: Stack, mid: str) -> str | None:
    return Ledger(stack.conn).find(stack.world.call_record_id(mid))


def unknown_item_status(stack: Stack) -> int:
    """What the receiver answers a notification of a subscription it does not know."""
    cr_id = "0f4d1a8e-6f3c-4d1e-9b55-0e9e0d2b7c12"
    item = {"subscriptionId": "0f4d1a8e-6f3c-4d1e-9b55-0e9e0d2b7c11", "clientState": "x",
            "changeType": "created", "tenantId": stack.world.tenant_id,
            "resource": f"communications/callRecords/{cr_id}"}  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.receiver_port}/graph/notifications",
        data=json.dumps({"value": [item]}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def until(what: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class TestRedisWiped:
    @pytest.mark.timeout(240)
    def test_every_eligible_meeting_in_salesforce_once(
        self, redis_url: str, tmp_path: Path, salesforce: Server
    ) -> None:
        with Stack(four_meetings(), redis_url, tmp_path, reconcile_overlap_seconds=OVERLAP,
                   sf_instance_url=salesforce.base, sf_client_id="emulator-app",
                   sf_client_secret="emulator-secret") as stack:  # fmt: skip
            stack.ensure_subscriptions()
            client = GraphClient(stack.settings)
            try:
                ticker = clock.build(stack.settings, stack.conn, client, now=stack.clock.now)
                ticker.tick(time.monotonic())  # renew, reconcile; the keeper takes its copy
                assert ticker.passes.get("recovery", 0) == 0
                old = {s.id for s in registry.load_all(stack.conn)}

                stack.play("m1")
                assert stack.work(lambda: outcome(stack, "m1") == "pushed", 60)
                assert unknown_item_status(stack) == 202  # a stranger's item: dropped

                stack.conn.flushdb()  # the wipe
                stack.play("m2", "m3", "b1")
                # The receiver notices at its next registry reload (at most a second).
                assert until(lambda: unknown_item_status(stack) == 503, 15)

                began = time.monotonic()
                ticker.tick(time.monotonic())  # one leader tick: the recovery
                print(f"recovery tick: {time.monotonic() - began:.1f} s")
                assert ticker.passes["recovery"] == 1
                assert [u.id for u in users.all_users(stack.conn)] == [ALICE]
                new = {s.id for s in registry.load_all(stack.conn)}
                assert new and not new & old
                assert until(lambda: unknown_item_status(stack) == 202, 15)  # the marker is back
                done = ("m1", "m2", "m3", "b1")
                assert stack.work(lambda: all(outcome(stack, m) for m in done), 120)
                print(f"every meeting settled {time.monotonic() - began:.1f} s after the tick")
            finally:
                client.close()
            assert {m: outcome(stack, m) for m in done} == {
                "m1": "pushed", "m2": "pushed", "m3": "pushed", "b1": "skipped"}  # fmt: skip
            meetings = salesforce.dump()["Teams_Meeting__c"]
            keys = sorted(str(m["Meeting_Key__c"]) for m in meetings)
            assert keys == sorted({str(outcome_key(stack, m)) for m in ("m1", "m2", "m3")})
            # m1 was written twice (before the wipe and again after it): one record still.
            assert len(salesforce.dump()["Teams_Transcript__c"]) == 3
