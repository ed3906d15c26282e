"""Tenant-wide rich transcript subscriptions: the organizer comes from the encrypted content."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from rq import Queue

from emulators.graph import tokens
from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from tests.workers.test_rich import make_cert
from workers import registry
from workers.ledger import Ledger


class TestRichTenantWide:
    """A tenant-wide transcript notification names no organizer: the encrypted data does, once
    the POST's validation tokens check out; without genuine tokens nothing is stored."""

    def _stack(self, redis_url: str, tmp_path: Path) -> Stack:
        cert, key = make_cert(tmp_path)
        settings = {"tenant_wide_transcripts": True, "graph_encryption_cert_path": cert,
                    "graph_encryption_key_path": key}  # fmt: skip
        return Stack(scenario(meeting("m1")), redis_url, tmp_path, salesforce=True, **settings)

    def test_organizer_from_encrypted_content(
        self, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with self._stack(redis_url, tmp_path) as stack:
            stack.ensure_subscriptions()
            resources = sorted(s.resource for s in registry.load_all(stack.conn))
            assert resources == ["communications/callRecords",
                                 "communications/onlineMeetings/getAllTranscripts"]  # fmt: skip
            held = stack.control("subscriptions")["value"]
            assert [s["includeResourceData"] for s in held if "Transcripts" in s["resource"]] == [
                True]  # fmt: skip
            stack.drop_subscriptions("callRecords")  # only the transcript path runs
            stack.play("m1")
            ledger = Ledger(stack.conn)
            om = stack.world.online_meeting_id("m1")

            def state() -> dict[str, str]:
                return ledger.meeting(ledger.find(om) or "")

            assert stack.work(lambda: state().get("outcome") == "pushed", 30), state()
            sources = {e.get("organizer_from") for e in ledger.events(ledger.find(om) or "")}
            assert sources == {"encrypted content", None}
            assert state()["reason"] == "external_participants"
            assert stack.stats()["transcript_content_downloads"] == {"m1": 1}

    def test_tokens_of_another_publisher_store_nothing(
        self, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The emulator's tokens, published by some other app: the item is dropped, counted."""
        other_app = "11111111-2222-3333-4444-555555555555"
        monkeypatch.setattr(tokens, "CHANGE_TRACKING_APP_ID", other_app)
        with self._stack(redis_url, tmp_path) as stack:
            stack.ensure_subscriptions()
            stack.drop_subscriptions("callRecords")
            stack.play("m1")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not stack.stats()["notifications"]["delivered"]:
                time.sleep(0.05)
            assert stack.stats()["notifications"]["delivered"] >= 1
            url = f"{stack.settings.public_url}/metrics"
            metrics = urllib.request.urlopen(url, timeout=10).read().decode()
            dropped = 'ingest_notifications_dropped_total{reason="validation_token_invalid"}'
            assert f"{dropped} 1.0" in metrics
            assert Queue("ingest", connection=stack.conn).count == 0
            assert Ledger(stack.conn).find(stack.world.online_meeting_id("m1")) is None
