"""A recurring series on the Graph emulator: occurrences share one online meeting (id, join
link, thread), and the routes keyed by that id answer for every occurrence played."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.graph.attendance import report_id
from emulators.scenario import ScenarioError, parse
from tests.emulators.graph_harness import ALICE, SCENARIO, Harness, start_emulator
from tests.emulators.test_graph_data import app_token_with, get

WEEK_1 = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Alice Adams>Week one.</v>\n"
WEEK_2 = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Alice Adams>Week two.</v>\n"


def occurrence(
    mid: str, day: str, vtt: str, organizer: str = "alice@contoso.com"
) -> dict[str, Any]:
    return {"id": mid, "subject": "Weekly review", "organizer": organizer, "series": "weekly",
            "start": f"{day}T15:00:00Z", "end": f"{day}T15:30:00Z",
            "participants": [{"upn": organizer},
                             {"email": "carol@fabrikam.com", "name": "Carol Diaz"}],
            "transcript": vtt}  # fmt: skip


def series_doc(*meetings: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(SCENARIO)
    doc["meetings"] = [*doc["meetings"], *meetings]
    return doc


@pytest.fixture
def series(tmp_path: Path) -> Iterator[Harness]:
    recorded = occurrence("w2", "2026-11-27", WEEK_2) | {"recording": True}
    doc = series_doc(occurrence("w1", "2026-11-20", WEEK_1), recorded)
    bg, harness = start_emulator(tmp_path / "ca", scenario=doc)
    try:
        yield harness
    finally:
        bg.close()


class TestScenario:
    def test_one_organizer_per_series(self) -> None:
        bob = occurrence("w2", "2026-11-27", WEEK_2, organizer="bob@contoso.com")
        doc = series_doc(occurrence("w1", "2026-11-20", WEEK_1), bob)
        with pytest.raises(ScenarioError, match=r"^meetings\[4\]\.series: 'weekly'"):
            parse(doc)

    def test_series_must_be_text(self) -> None:
        doc = series_doc(occurrence("w1", "2026-11-20", WEEK_1) | {"series": 7})
        with pytest.raises(ScenarioError, match=r"^meetings\[3\]\.series: must be"):
            parse(doc)


class TestSeries:
    """Occurrences share the online meeting; each keeps its own callRecord, transcripts and
    attendance report."""

    def test_shared_ids(self, series: Harness) -> None:
        w = series.state.world
        assert w.online_meeting_id("w1") == w.online_meeting_id("w2")
        assert w.join_web_url("w1") == w.join_web_url("w2")
        assert w.thread_id("w1") == w.thread_id("w2")
        assert w.call_record_id("w1") != w.call_record_id("w2")
        assert w.transcript_id("w1") != w.transcript_id("w2")
        # A meeting outside the series keeps its own.
        assert w.online_meeting_id("m-001") != w.online_meeting_id("w1")
        om_id = w.online_meeting_id("w1")
        assert w.occurrences(om_id) == ("w1", "w2")
        base = f"/v1.0/users/{ALICE}/onlineMeetings"
        found = get(series, base, params={"$filter": f"JoinWebUrl eq '{w.join_web_url('w2')}'"})
        assert [m["id"] for m in found.json()["value"]] == [om_id]  # one online meeting
        one = get(series, f"{base}/{om_id}").json()
        assert (one["id"], one["joinWebUrl"]) == (om_id, w.join_web_url("w1"))

    def test_records_of_each_occurrence(self, series: Harness) -> None:
        w = series.state.world
        assert series.control("POST", "/_emulator/play", {"meetings": ["w1", "w2"]}).is_success
        for mid, day in (("w1", "2026-11-20"), ("w2", "2026-11-27")):
            record = get(series, f"/v1.0/communications/callRecords/{w.call_record_id(mid)}")
            body = record.json()
            assert (body["id"], body["joinWebUrl"]) == (w.call_record_id(mid), w.join_web_url("w1"))
            assert body["startDateTime"] == f"{day}T15:00:00Z"

    def test_transcripts_and_reports_of_every_occurrence(self, series: Harness) -> None:
        """Graph, List transcripts: "Retrieve the list of callTranscript objects associated
        with a scheduled onlineMeeting" — its example lists one meeting's transcripts created on
        two days (2021-09-16 and 2021-09-17), as the occurrences of a series are. Graph, List
        meetingAttendanceReports: "Each time an online meeting or a virtual event ends, an
        attendance report is generated for that session." """
        w = series.state.world
        om_id = w.online_meeting_id("w1")
        base = f"/v1.0/users/{ALICE}/onlineMeetings/{om_id}"
        assert series.control("POST", "/_emulator/play", {"meetings": ["w1"]}).status_code == 200
        listed = get(series, f"{base}/transcripts").json()["value"]
        assert [t["id"] for t in listed] == [w.transcript_id("w1")]
        reports = get(series, f"{base}/attendanceReports").json()["value"]
        assert [r["id"] for r in reports] == [report_id("w1")]
        series.state.clock.advance(7 * 86400)  # a week later
        assert series.control("POST", "/_emulator/play", {"meetings": ["w2"]}).status_code == 200

        listed = get(series, f"{base}/transcripts").json()["value"]
        assert [t["id"] for t in listed] == [w.transcript_id("w2"), w.transcript_id("w1")]
        assert {t["meetingId"] for t in listed} == {om_id}
        # Each dated in its own occurrence's time (they were played seconds apart).
        assert [t["createdDateTime"][:16] for t in listed] == ["2026-11-27T15:30",
                                                               "2026-11-20T15:30"]  # fmt: skip
        assert [t["callId"] for t in listed] == [w.call_record_id("w2"), w.call_record_id("w1")]
        for mid, vtt in (("w1", WEEK_1), ("w2", WEEK_2)):
            content = get(series, f"{base}/transcripts/{w.transcript_id(mid)}/content",
                          headers={"Accept": "text/vtt"})  # fmt: skip
            assert content.text == vtt
        assert w.transcript_content_downloads == {"w1": 1, "w2": 1}

        reports = get(series, f"{base}/attendanceReports").json()["value"]
        assert [r["id"] for r in reports] == [report_id("w2"), report_id("w1")]
        assert [(r["meetingStartDateTime"], r["meetingEndDateTime"]) for r in reports] == [
            ("2026-11-27T15:00:00Z", "2026-11-27T15:30:00Z"),
            ("2026-11-20T15:00:00Z", "2026-11-20T15:30:00Z"),
        ]
        for mid in ("w1", "w2"):
            one = get(series, f"{base}/attendanceReports/{report_id(mid)}",
                      params={"$expand": "attendanceRecords"}).json()  # fmt: skip
            assert one["id"] == report_id(mid)
            assert {r["emailAddress"] for r in one["attendanceRecords"]} == {
                "alice@contoso.com", "carol@fabrikam.com"}  # fmt: skip
            records = get(series, f"{base}/attendanceReports/{report_id(mid)}/attendanceRecords")
            assert len(records.json()["value"]) == 2
        # Recordings hang off the one meeting id too: w2 alone was recorded.
        token = app_token_with(series, "OnlineMeetingRecording.Read.All")
        recordings = get(series, f"{base}/recordings", token).json()["value"]
        assert [r["id"] for r in recordings] == [w.recording_id("w2")]
        assert get(series, f"{base}/recordings/{w.recording_id('w1')}", token).status_code == 404
        # Another meeting's report is not this series'.
        assert get(series, f"{base}/attendanceReports/{report_id('m-001')}").status_code == 404
