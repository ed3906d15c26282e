"""`subscriptions ensure` through msgraph-sdk against the Graph emulator and a real receiver."""

from __future__ import annotations

from pathlib import Path

from ingest import registry
from tests.e2e.harness import Stack
from tests.e2e.scenarios import ALICE, meeting, scenario


class TestEnsureOnEmulator:
    """Graph ends up holding our subscriptions with the clientStates the registry holds."""

    def test_ensure_twice(self, redis_url: str, tmp_path: Path) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path) as stack:
            rows = stack.ensure_subscriptions()
            assert sorted(r["resource"] for r in rows) == [
                "communications/callRecords",
                f"users/{ALICE}/onlineMeetings/getAllTranscripts",
            ]
            held = {s.id: s for s in registry.load_all(stack.conn)}
            graph = {s["id"]: s for s in stack.control("subscriptions")["value"]}
            assert set(held) == set(graph)
            for sub_id, sub in held.items():
                assert graph[sub_id]["clientState"] == sub.client_state
                assert graph[sub_id]["lifecycleNotificationUrl"].endswith("/graph/lifecycle")
            again = stack.ensure_subscriptions()
            assert {r["action"] for r in again} == {"kept"}
            assert {s.id for s in registry.load_all(stack.conn)} == set(held)
