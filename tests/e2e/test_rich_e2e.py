"""Tenant-wide rich transcript subscriptions: the organizer comes from the encrypted content."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from tests.workers.test_rich import make_cert
from workers import registry
from workers.ledger import Ledger


class TestRichTenantWide:
    """A tenant-wide transcript notification names no organizer: the HMAC-checked data does."""

    @pytest.mark.parametrize(
        ("publisher", "source"),
        [(None, "encrypted content"), ("11111111-2222-3333-4444-555555555555", "meeting id")],
    )
    def test_organizer_from_encrypted_content(
        self,
        redis_url: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        publisher: str | None,
        source: str,
    ) -> None:
        """Genuine validation tokens: the data is used; a token another app published: the
        data is ignored (the organizer comes from the meeting id instead)."""
        monkeypatch.setattr("workers.salesforce.stage.push", lambda m: {"meeting": "a01"})
        if publisher is not None:
            from emulators.graph import tokens

            monkeypatch.setattr(tokens, "CHANGE_TRACKING_APP_ID", publisher)
        cert, key = make_cert(tmp_path)
        settings = {"tenant_wide_transcripts": True, "graph_encryption_cert_path": cert,
                    "graph_encryption_key_path": key}  # fmt: skip
        with Stack(scenario(meeting("m1")), redis_url, tmp_path, **settings) as stack:
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
            assert sources == {source, None}
            assert state()["reason"] == "external_participants"
            assert stack.stats()["transcript_content_downloads"] == {"m1": 1}
