"""The Graph emulator's World: play times, stable ids, transcript readiness, versions."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from emulators.graph.world import World, external_tenant_id, external_user_id
from emulators.scenario import parse
from tests.emulators.graph_harness import ALICE, SCENARIO, TENANT


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def world(doc: dict[str, Any] | None = None) -> tuple[World, FakeClock]:
    clock = FakeClock()
    return World(parse(doc or SCENARIO), clock=clock), clock


class TestPlay:
    """Playing marks meetings ended now; unknown ids fail before anything changes."""

    def test_play_all_and_some(self) -> None:
        w, clock = world()
        assert w.played_at("m-001") is None
        assert w.play(["m-002"]) == ["m-002"] and w.played_at("m-002") == clock.now
        assert w.played() == ["m-002"]
        clock.now += 5
        assert w.play() == ["m-001", "m-002", "m-003"]
        assert w.played_at("m-002") == clock.now

    def test_unknown_id(self) -> None:
        w, _ = world()
        with pytest.raises(KeyError):
            w.play(["m-001", "nope"])
        assert w.played_at("m-001") is None
        with pytest.raises(KeyError):
            w.meeting("nope")


class TestIds:
    """Ids are stable across Worlds, shaped like Graph's, and map back to the meeting."""

    def test_stable_and_reversible(self) -> None:
        a, _ = world()
        b, _ = world()
        for m in ("m-001", "m-002"):
            assert a.call_record_id(m) == b.call_record_id(m)
            assert a.meeting_by_call_record(a.call_record_id(m)) == m
            assert a.meeting_by_online_meeting(a.online_meeting_id(m)) == m
        assert a.meeting_by_call_record(str(uuid.uuid4())) is None
        assert len({a.transcript_id("m-001"), a.recording_id("m-001")}) == 2

    def test_shapes(self) -> None:
        w, _ = world()
        raw = base64.urlsafe_b64decode(w.online_meeting_id("m-001")).decode()
        assert raw.startswith(f"1*{ALICE}*0**19:meeting_") and raw.endswith("@thread.v2")
        assert base64.urlsafe_b64decode(w.transcript_id("m-001")).decode().startswith("1##0##")
        url = w.join_web_url("m-001")
        assert url.startswith("https://teams.microsoft.com/l/meetup-join/19%3ameeting_")
        assert "%40thread.v2/0?context=" in url and TENANT in url.replace("%22", '"')
        uuid.UUID(w.call_record_id("m-001"))

    def test_people(self) -> None:
        w, _ = world()
        carol = w.meeting("m-001").participants[1]
        assert w.person_id(carol) == external_user_id("CAROL@fabrikam.com")
        assert w.person_tenant(carol) == external_tenant_id("fabrikam.com")
        assert not w.is_b2b_guest(carol)
        assert w.user("ALICE@contoso.com") == w.user(ALICE.upper())
        assert w.user("zed@contoso.com") is None


class TestTranscriptReadiness:
    """A transcript is ready `transcript_ready_after_s` after play; none without a transcript."""

    def test_ready_after_delay(self) -> None:
        doc: dict[str, Any] = {**SCENARIO, "meetings": [dict(SCENARIO["meetings"][0])]}
        doc["meetings"][0]["transcript_ready_after_s"] = 8
        w, clock = world(doc)
        assert w.transcript_ready_at("m-001") is None and not w.transcript_ready("m-001")
        w.play()
        assert w.transcript_ready_at("m-001") == clock.now + 8
        assert not w.transcript_ready("m-001")
        clock.now += 8
        assert w.transcript_ready("m-001")

    def test_no_transcript(self) -> None:
        w, _ = world()
        w.play()
        assert not w.has_transcript("m-003") and not w.transcript_ready("m-003")


class TestVersions:
    """callRecord versions start at 1 and only grow."""

    def test_bump(self) -> None:
        w, _ = world()
        assert w.call_record_version("m-001") == 1
        assert w.bump_call_record_version("m-001") == 2
        assert w.call_record_version("m-001") == 2 and w.call_record_version("m-002") == 1
