"""`subscriptions ensure` through msgraph-sdk against the Graph emulator and a real receiver."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ingest import subscriptions
from tests.e2e.harness import Stack
from tests.e2e.scenarios import ALICE, meeting, scenario
from workers import registry


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


class TestCommand:
    """`subscriptions ensure|list|delete --json` print one document; list never shows secrets."""

    def test_cli_flow(self, redis_url: str, tmp_path: Path, capsys: Any) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path) as stack:

            def run(action: str) -> dict[str, Any]:
                capsys.readouterr()
                assert subscriptions.run(argparse.Namespace(action=action, json=True),
                                         stack.settings) == 0  # fmt: skip
                out = capsys.readouterr().out.strip().splitlines()[-1]
                doc: dict[str, Any] = json.loads(out)
                return doc

            created = run("ensure")["subscriptions"]
            assert {r["action"] for r in created} == {"created"}
            listed = run("list")
            states = [s.client_state for s in registry.load_all(stack.conn)]
            assert all(state not in json.dumps(listed) for state in states)
            assert all(row["in_graph"] for row in listed["subscriptions"])
            assert len(run("delete")["subscriptions"]) == 2
            assert stack.control("subscriptions")["value"] == []
            assert registry.load_all(stack.conn) == []
