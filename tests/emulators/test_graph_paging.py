"""The Graph emulator's live shapes: several transcripts per meeting, paged lists, and a
callRecord that exists (and is notified) only some time after the meeting's transcripts."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulators.graph.data import OPTIONS_KEY
from emulators.tls import client_context
from tests.emulators.graph_harness import (
    ALICE,
    SCENARIO,
    Harness,
    start_emulator,
    wait_for,
)
from tests.emulators.test_graph_notifications import play, subscribe

FIRST = "WEBVTT\n\n0:0:0.0 --> 0:0:2.0\n<v Alice Adams>Before the break.\n"
SECOND = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Carol Diaz>After the break.</v>\n"
THIRD = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v Alice Adams>Last words.</v>\n"
CROWD = [{"email": f"guest{i:02d}@fabrikam.com"} for i in range(12)]


def scenario() -> dict[str, Any]:
    doc = copy.deepcopy(SCENARIO)
    m1 = doc["meetings"][0]
    del m1["transcript"]
    m1["transcripts"] = [FIRST, SECOND, THIRD]
    m1["participants"] = [{"upn": "alice@contoso.com"}, *CROWD]
    doc["meetings"][1]["callrecord_after_s"] = 600
    return doc


@pytest.fixture
def g(tmp_path: Path) -> Iterator[Harness]:
    bg, harness = start_emulator(tmp_path / "ca", scenario=scenario())
    try:
        yield harness
    finally:
        bg.close()


def get(g: Harness, url: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {g.app_token()}", **kwargs.pop("headers", {})}
    with httpx.Client(verify=client_context(g.ca_dir)) as c:
        return c.get(url if url.startswith("https:") else f"{g.url}{url}", headers=headers,
                     **kwargs)  # fmt: skip


def meeting_path(g: Harness, meeting: str) -> str:
    world = g.state.world
    return f"/v1.0/users/{world.organizer_id(meeting)}/onlineMeetings/" + (
        world.online_meeting_id(meeting)
    )


def all_pages(g: Harness, url: str, **kwargs: Any) -> list[list[dict[str, Any]]]:
    """Every page of a collection, following `@odata.nextLink` as Graph's paging page says."""
    body = get(g, url, **kwargs).json()
    pages = [body["value"]]
    while body.get("@odata.nextLink"):  # the link keeps the first request's options
        body = get(g, body["@odata.nextLink"]).json()
        pages.append(body["value"])
    return pages


class TestSeveralTranscripts:
    """A meeting with `transcripts` lists each with its own id and creation time, newest first
    as Graph's "List transcripts" example does; each has its own content."""

    def test_listed_newest_first_with_own_ids_and_content(self, g: Harness) -> None:
        world = g.state.world
        world.play(["m-001"])
        listed = get(g, meeting_path(g, "m-001") + "/transcripts").json()["value"]
        ids = world.transcript_ids("m-001")
        assert len(set(ids)) == 3
        # The example's answer: "2021-09-17T06:09:24…", then "2021-09-16T18:58:58…", then
        # "2021-09-16T18:56:00…": the most recent transcript first.
        assert [t["id"] for t in listed] == list(reversed(ids))
        created = [t["createdDateTime"] for t in reversed(listed)]
        assert created == sorted(created) and len(set(created)) == 3
        assert len({t["contentCorrelationId"] for t in listed}) == 3
        texts = [get(g, f"{meeting_path(g, 'm-001')}/transcripts/{tid}/content",
                     headers={"Accept": "text/vtt"}).text for tid in ids]  # fmt: skip
        assert texts == [FIRST, SECOND, THIRD]
        assert world.transcript_content_downloads == {"m-001": 3}
        meta = get(g, f"{meeting_path(g, 'm-001')}/transcripts/{ids[1]}").json()
        assert meta["createdDateTime"] == created[1]
        unknown = f"{meeting_path(g, 'm-001')}/transcripts/{world.transcript_id('m-002')}"
        assert get(g, unknown).status_code == 404

    def test_a_notification_per_transcript(self, g: Harness) -> None:
        rx = g.receiver()
        subscribe(g, rx, "communications/onlineMeetings/getAllTranscripts")
        play(g, "m-001")
        wait_for(lambda: len(rx.items()) == 3)
        g.idle()
        world = g.state.world
        resources = [i["resource"] for i in rx.items()]
        om = world.online_meeting_id("m-001")
        assert resources == [
            f"communications/onlineMeetings('{om}')/transcripts('{tid}')"
            for tid in world.transcript_ids("m-001")
        ]

    def test_get_all_transcripts_lists_each(self, g: Harness) -> None:
        g.state.world.play(["m-001"])
        fn = f"getAllTranscripts(meetingOrganizerUserId='{ALICE}')"
        listed = get(g, f"/v1.0/users/{ALICE}/onlineMeetings/{fn}").json()["value"]
        assert [t["id"] for t in listed] == g.state.world.transcript_ids("m-001")

    def test_transcript_and_transcripts_are_one_or_the_other(self) -> None:
        from emulators.scenario import ScenarioError, parse

        doc = scenario()
        doc["meetings"][0]["transcript"] = FIRST
        with pytest.raises(ScenarioError, match=r"meetings\[0\].transcripts: give transcripts"):
            parse(doc)
        doc["meetings"][0]["transcripts"] = [FIRST, "hello"]
        del doc["meetings"][0]["transcript"]
        with pytest.raises(ScenarioError, match=r"meetings\[0\].transcripts\[1\]: WebVTT must"):
            parse(doc)


class TestPaging:
    """Lists longer than a page carry `@odata.nextLink`; "To read all results, you must
    continue to call Microsoft Graph with the @odata.nextLink property returned in each
    response until the @odata.nextLink property is no longer returned" (Graph, "Paging
    Microsoft Graph data in your app")."""

    def test_transcripts_page_and_take_no_top(self, g: Harness) -> None:
        g.app[OPTIONS_KEY].transcripts_page = 2
        g.state.world.play(["m-001"])
        url = f"{g.url}{meeting_path(g, 'm-001')}/transcripts"
        pages = all_pages(g, url)
        assert [len(p) for p in pages] == [2, 1]
        ids = [t["id"] for page in pages for t in page]
        assert ids == list(reversed(g.state.world.transcript_ids("m-001")))
        # "This method doesn't support any OData query parameters" ("List transcripts"):
        # a $top does not choose the page size.
        assert [len(p) for p in all_pages(g, url, params={"$top": "1"})] == [2, 1]

    def test_default_transcript_page_is_small(self, g: Harness) -> None:
        assert g.app[OPTIONS_KEY].transcripts_page == 10
        assert g.app[OPTIONS_KEY].attendance_page == 10

    def test_attendance_records_inline_then_paged(self, g: Harness) -> None:
        g.state.world.play(["m-001"])
        reports = get(g, meeting_path(g, "m-001") + "/attendanceReports").json()["value"]
        report_url = f"{meeting_path(g, 'm-001')}/attendanceReports/{reports[0]['id']}"
        body = get(g, report_url, params={"$expand": "attendanceRecords"}).json()
        assert len(body["attendanceRecords"]) == 10
        rest = all_pages(g, body["attendanceRecords@odata.nextLink"])
        assert [len(p) for p in rest] == [3]
        emails = [r["emailAddress"] for r in body["attendanceRecords"] + rest[0]]
        assert len(set(emails)) == 13 and emails[0] == "alice@contoso.com"
        # "This method supports the OData query parameters" ("List attendanceRecords").
        listed = all_pages(g, f"{g.url}{report_url}/attendanceRecords", params={"$top": "5"})
        assert [len(p) for p in listed] == [5, 5, 3]
        assert [r["emailAddress"] for p in listed for r in p] == emails


class TestLateCallRecord:
    """`callrecord_after_s`: "A call record is created after a call or meeting ends"; until it
    exists a GET answers 404 (Graph, "Get callRecord"), and its notification waits for it,
    while the transcript's comes at once."""

    def test_404_until_it_exists(self, g: Harness) -> None:
        world = g.state.world
        world.play(["m-002"])
        url = f"/v1.0/communications/callRecords/{world.call_record_id('m-002')}"
        missing = get(g, url)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
        assert get(g, "/v1.0/communications/callRecords").json()["value"] == []
        assert get(g, url + "/participants_v2").status_code == 404
        g.state.clock.advance(600)
        assert get(g, url).json()["id"] == world.call_record_id("m-002")
        listed = get(g, "/v1.0/communications/callRecords").json()["value"]
        assert [r["id"] for r in listed] == [world.call_record_id("m-002")]

    def test_transcript_notified_first(self, g: Harness) -> None:
        records, transcripts = g.receiver(), g.receiver()
        subscribe(g, records, "communications/callRecords")
        subscribe(g, transcripts, "communications/onlineMeetings/getAllTranscripts")
        play(g, "m-002")
        wait_for(lambda: len(transcripts.items()) == 1)
        # Not `idle()`: the late callRecord's delivery is pending until the clock moves.
        assert records.items() == [] and not g.state.world.call_record_ready("m-002")
        g.control("POST", "/_emulator/advance", {"seconds": 600})
        wait_for(lambda: len(records.items()) == 2)
        g.idle()
        assert [i["changeType"] for i in records.items()] == ["created", "updated"]
