"""The commands against the Graph emulator: `users add` resolves through Graph, the tenant's
verified domains stand in for INTERNAL_DOMAINS, and `explain` tells the story."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from core.exceptions import BadInput
from ingest import explain, users
from tests.e2e.harness import Stack
from tests.e2e.scenarios import BOB, meeting, scenario
from workers import users as registry_users
from workers.ledger import Ledger


class TestUsersAdd:
    """`users add EMAIL` stores the directory id Graph returns; an unknown address fails."""

    def test_add_via_graph(self, redis_url: str, tmp_path: Path, capsys: Any) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path) as stack:
            args = argparse.Namespace(action="add", email="Bob@contoso.com", json=True)
            assert users.run(args, stack.settings) == 0
            doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert doc["added"]["id"] == BOB
            assert registry_users.find(stack.conn, "bob@contoso.com") is not None
            with pytest.raises(BadInput):
                users.run(argparse.Namespace(action="add", email="nobody@contoso.com",
                                             json=False), stack.settings)  # fmt: skip
            assert "GET /v1.0/users/{uid}" in stack.stats()["requests"]


class TestUsersSubscriptions:
    """Adding an ECI user creates their transcript subscription at once; removing deletes it."""

    def test_add_then_remove(self, redis_url: str, tmp_path: Path, capsys: Any) -> None:
        from workers import registry
        from workers.subscriptions import GraphSubscriptions

        with Stack(scenario(meeting("m1")), redis_url, tmp_path) as stack:
            stack.ensure_subscriptions()
            bob = f"users/{BOB}/onlineMeetings/getAllTranscripts"
            bob_key = bob.lower()

            def in_graph() -> set[str]:
                api = GraphSubscriptions(stack.settings)
                try:
                    return {str(s["resource"]).lower() for s in api.list()}
                finally:
                    api.close()

            assert bob_key not in in_graph()
            args = argparse.Namespace(action="add", email="bob@contoso.com", json=True)
            assert users.run(args, stack.settings) == 0
            doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert [(r["action"], r["resource"]) for r in doc["subscriptions"]] == [
                ("created", bob)
            ]
            assert bob_key in in_graph()
            assert bob in {s.resource for s in registry.load_all(stack.conn)}

            args = argparse.Namespace(action="remove", email="bob@contoso.com", json=True)
            assert users.run(args, stack.settings) == 0
            doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert [(r["action"], r["resource"]) for r in doc["subscriptions"]] == [
                ("deleted", bob)
            ]
            assert bob_key not in in_graph()
            assert bob not in {s.resource for s in registry.load_all(stack.conn)}


class TestTenantDomains:
    """Without INTERNAL_DOMAINS the tenant's verified domains (GET /organization) are used once."""

    def test_domains_from_graph(
        self, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        inside = [{"upn": "alice@contoso.com"}, {"upn": "dan@contoso.com"}]
        doc = scenario(meeting("m1"), meeting("m2", people=inside))
        with Stack(doc, redis_url, tmp_path, salesforce=True, internal_domains=()) as stack:
            stack.ensure_subscriptions()
            stack.play("m1", "m2")
            ledger = Ledger(stack.conn)

            def reason(mid: str) -> str | None:
                key = ledger.find(stack.world.call_record_id(mid))
                return ledger.meeting(key).get("reason") if key else None

            assert stack.work(lambda: bool(reason("m1") and reason("m2")), 30)
            assert (reason("m1"), reason("m2")) == (
                "external_participants", "no_external_participants")  # fmt: skip
            assert stack.stats()["requests"].get("GET /v1.0/organization") == 1


class TestExplain:
    """`explain` reaches the meeting by either id and names reason and outcome in plain words."""

    def test_story(self, redis_url: str, tmp_path: Path, capsys: Any) -> None:
        with Stack(scenario(meeting("s", seconds=20, transcript=None)), redis_url,
                   tmp_path) as stack:  # fmt: skip
            stack.ensure_subscriptions()
            stack.play("s")
            ledger = Ledger(stack.conn)
            assert stack.work(lambda: ledger.find(stack.world.call_record_id("s")) is not None)
            capsys.readouterr()
            args = argparse.Namespace(meeting_id=stack.world.call_record_id("s"), json=False)
            assert explain.run(args, stack.settings) == 0
            text = capsys.readouterr().out
            assert "too_short" in text
            assert "Outcome: skipped" in text
