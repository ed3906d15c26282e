"""The link to a meeting's recording, never the recording: a connected organizer's OneDrive
is listed once (delegated Files.Read) through msgraph-sdk on the Graph emulator; an
admin-added organizer's is not, and the ledger says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from ingest import explain
from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from tests.e2e.test_delegated_e2e import KEY, connect, process
from workers.ledger import Ledger

DRIVE = "GET /v1.0/users/{uid}/drive/root:/{folder}:/children"


def pushed_links(monkeypatch: Any) -> dict[str, str | None]:
    """The recording link of each meeting handed to the Salesforce stage (stubbed here;
    tests/workers/test_salesforce_mapping.py writes Recording_Url__c)."""
    links: dict[str, str | None] = {}

    def push(resolved: Any) -> dict[str, str]:
        links[resolved.subject] = resolved.recording_url
        return {"meeting": "a01000"}

    monkeypatch.setattr("workers.salesforce.stage.push", push)
    return links


def events(stack: Stack, mid: str) -> list[str]:
    ledger = Ledger(stack.conn)
    key = ledger.find(stack.world.call_record_id(mid))
    assert key is not None
    return [e["what"] for e in ledger.events(key)]


def total(spent: dict[str, dict[str, int]]) -> int:
    return sum(n for routes in spent.values() for n in routes.values())


class TestConnectedOrganizer:
    """A recorded meeting gets its file's webUrl in one request; an unrecorded one gets none;
    nothing is downloaded; at most 7 Graph requests a meeting."""

    def test_links(self, redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
        links = pushed_links(monkeypatch)
        doc = scenario(meeting("m1"), meeting("m10"), meeting("m2", recording=False))
        with Stack(doc, redis_url, tmp_path, secret_key=KEY) as stack:
            connect(stack)
            stack.ensure_subscriptions()
            spent = {mid: process(stack, mid) for mid in ("m10", "m1", "m2")}
            name = quote("Meeting m1-20261120_150000-Meeting Recording.mp4")
            assert links["Meeting m1"] == (
                "https://contoso-my.sharepoint.com/personal/alice_contoso_com/Documents/"
                f"Recordings/{name}"
            )
            assert links["Meeting m10"] is not None and links["Meeting m10"].endswith(
                quote("Meeting m10-20261120_150000-Meeting Recording.mp4")
            )
            assert links["Meeting m2"] is None
            for mid, requests in spent.items():
                assert requests["delegated"].get(DRIVE) == 1, mid
                assert DRIVE not in requests["app"], mid
                assert total(requests) <= 7, (mid, requests)
            assert stack.stats()["recording_content_downloads"] == 0
            assert "recording link found" in events(stack, "m1")
            assert any("no recording of this meeting" in e for e in events(stack, "m2"))
            shown = explain.render(
                explain.story(Ledger(stack.conn), stack.world.call_record_id("m1"))
            )
            assert "Recording (left on Teams): https://contoso-my.sharepoint.com/" in shown


class TestRecordingTurnedOff:
    """The onlineMeeting says `allowRecording: false` ("Indicates whether recording is enabled
    for the meeting", Graph's onlineMeetingBase): there can be no recording, so the OneDrive is
    not listed at all."""

    def test_no_request(self, redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
        links = pushed_links(monkeypatch)
        doc = scenario(meeting("m4", recording=False, allow_recording=False), meeting("m5"))
        with Stack(doc, redis_url, tmp_path, secret_key=KEY) as stack:
            connect(stack)
            stack.ensure_subscriptions()
            off, on = process(stack, "m4"), process(stack, "m5")
            assert links["Meeting m4"] is None
            assert links["Meeting m5"] is not None
            assert not any("/drive/" in route for r in off.values() for route in r)
            assert on["delegated"].get(DRIVE) == 1
            assert total(off) == total(on) - 1, (off, on)
            shown = explain.render(
                explain.story(Ledger(stack.conn), stack.world.call_record_id("m4"))
            )
            assert "no recording link: recording was turned off in the meeting's options" in shown


class TestAdminAddedOrganizer:
    """No delegated Files.Read: no OneDrive request, an empty link, and `ingest explain` says
    why."""

    def test_no_link(self, redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
        links = pushed_links(monkeypatch)
        with Stack(scenario(meeting("m1")), redis_url, tmp_path, secret_key=KEY) as stack:
            stack.ensure_subscriptions()
            spent = process(stack, "m1")
            assert links == {"Meeting m1": None}
            assert not any("/drive/" in route for r in spent.values() for route in r)
            shown = explain.render(
                explain.story(Ledger(stack.conn), stack.world.call_record_id("m1"))
            )
            assert "no recording link: the organizer was added by an admin" in shown
            assert "Files.Read" in shown
            assert stack.stats()["recording_content_downloads"] == 0
