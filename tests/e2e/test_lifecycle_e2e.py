"""Lifecycle events from the Graph emulator: the worker renews or re-creates the subscription."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from workers import registry
from workers.subscriptions import GraphSubscriptions, Manager


def call_records(stack: Stack) -> registry.Subscription:
    return next(s for s in registry.load_all(stack.conn) if s.kind == "callRecords")


class TestLifecycle:
    """reauthorizationRequired renews the subscription; one Graph lost silently (it sends no
    subscriptionRemoved for these resources) is re-created by the next renewal."""

    def test_reauthorize_renews(self, redis_url: str, tmp_path: Path) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path) as stack:
            stack.ensure_subscriptions()
            sub = call_records(stack)
            stack.control("advance", {"seconds": 3600})  # so a renewal moves the expiry on
            stack.control("lifecycle", {"subscriptionId": sub.id,
                                        "event": "reauthorizationRequired"})  # fmt: skip
            assert stack.work(lambda: call_records(stack).expires_at != sub.expires_at, 20)
            graph = {s["id"]: s for s in stack.control("subscriptions")["value"]}
            assert graph[sub.id]["expirationDateTime"] > sub.expires_at
            assert "PATCH /v1.0/subscriptions/{id}" in stack.stats()["requests"]

    def test_lost_is_recreated_by_renewal(self, redis_url: str, tmp_path: Path) -> None:
        with Stack(scenario(meeting("m1")), redis_url, tmp_path) as stack:
            stack.ensure_subscriptions()
            sub = call_records(stack)
            stack.control("lose", {"subscriptionId": sub.id})
            api = GraphSubscriptions(stack.settings)
            try:
                report = Manager(stack.settings, stack.conn, api).renew()
            finally:
                api.close()
            actions = {r["action"] for r in report if r["kind"] == "callRecords"}
            assert actions == {"forgotten", "created"}
            graph = {s["id"]: s for s in stack.control("subscriptions")["value"]}
            fresh = call_records(stack)
            assert graph[fresh.id]["clientState"] == fresh.client_state
            assert sub.id not in graph
