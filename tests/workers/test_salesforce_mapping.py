"""The Salesforce records of a meeting: keys, fields, talk time, truncation, the file."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workers.meeting import ResolvedMeeting, ResolvedParticipant, ResolvedTranscript
from workers.salesforce import mapping, records
from workers.salesforce.matching import PersonMatch, Related
from workers.vtt import SALESFORCE_TEXT_LIMIT, parse

VTT = (
    "WEBVTT\n\n"
    "00:00:05.000 --> 00:00:15.000\n<v Carol Diaz>We need it by March? Or April?</v>\n\n"
    "00:00:00.000 --> 00:00:05.000\n<v Alice Adams>Hello Carol.</v>\n\n"
    "00:00:15.000 --> 00:00:20.000\n<v alice  ADAMS>Yes.</v>\n\n"
    "00:00:20.000 --> 00:00:30.000\n<v Nobody Known>Hi.</v>\n"
)


def person(
    key: str, name: str, email: str | None, kind: str, role: str = "attendee"
) -> ResolvedParticipant:
    return ResolvedParticipant(key=key, name=name, email=email, role=role, kind=kind)


ALICE = person("id-alice", "Alice Adams", "alice@contoso.com", "internal", "organizer")
CAROL = person("carol@fabrikam.com", "Carol Diaz", "Carol@Fabrikam.com", "external")
PHONE = ResolvedParticipant("+14255550100", "+14255550100", None, "attendee", "unidentified",
                            phone="+14255550100")  # fmt: skip


def meeting(**changes: object) -> ResolvedMeeting:
    base: dict[str, object] = dict(
        meeting_key="m-001",
        online_meeting_id="MSoxMjM0KjAqKjE5Om1lZXRpbmdfYWJj",
        call_record_id="e523d2ed-2966-4b6b-925b-754a88034cc5",
        subject="Renewal call",
        start=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
        end=datetime(2026, 11, 20, 15, 30, tzinfo=UTC),
        organizer_email="alice@contoso.com",
        reason="external_participants",
        participants=(ALICE, CAROL, PHONE),
        transcripts=(ResolvedTranscript("t-1", VTT),),
        recording_url="https://contoso.sharepoint.com/rec.mp4",
    )
    if "transcript_vtt" in changes:  # one transcript with this text
        changes["transcripts"] = (ResolvedTranscript("t-1", str(changes.pop("transcript_vtt"))),)
    base.update(changes)
    return ResolvedMeeting(**base)  # type: ignore[arg-type]


class TestKeys:
    """External keys are stable, at most 255 URL-safe characters, and distinct per record."""

    @pytest.mark.parametrize(
        ("raw", "kept"),
        [
            ("m-001", True),
            ("a" * 255, True),
            ("a" * 256, False),
            ("MSo/abc+def==", False),
            ("with space", False),
            ("ünïcode", False),
        ],
    )
    def test_external_key(self, raw: str, kept: bool) -> None:
        key = records.external_key(raw)
        assert (key == raw) is kept
        assert len(key) <= 255
        assert records.external_key(raw) == key
        if not kept:
            assert key.startswith("sha256:") and len(key) == 71

    def test_keys_differ_by_record_and_are_stable(self) -> None:
        m = meeting()
        keys = [records.meeting_external_key(m), records.transcript_key(m, m.transcripts[0])]
        keys += [records.participant_key(m, p) for p in m.participants]
        assert len(set(keys)) == len(keys)
        assert keys[0] == "m-001"
        assert records.participant_key(meeting(), ALICE) == records.participant_key(m, ALICE)
        assert records.participant_key(meeting(meeting_key="m-002"), ALICE) != keys[2]

    def test_long_graph_ids_are_hashed_but_kept_raw(self) -> None:
        long_id = "MSo" + "x" * 400
        m = meeting(meeting_key=long_id, online_meeting_id=long_id[:255])
        assert len(records.meeting_external_key(m)) <= 255
        record = mapping.meeting_record(m, parse(VTT), {}, Related())
        assert record["Online_Meeting_Id__c"] == long_id[:255]


class TestMeetingRecord:
    """The meeting's fields follow DESIGN §6, in Salesforce's datetime format."""

    def test_fields(self) -> None:
        m = meeting()
        t = parse(VTT)
        talk = mapping.talk_seconds(m, t)
        record = mapping.meeting_record(m, t, talk, Related("001A", "006B", "contact_role"))
        assert record == {
            "Name": "Renewal call",
            "Online_Meeting_Id__c": m.online_meeting_id,
            "Call_Record_Id__c": m.call_record_id,
            "Start__c": "2026-11-20T15:00:00.000Z",
            "End__c": "2026-11-20T15:30:00.000Z",
            "Duration_Seconds__c": 1800,
            "Organizer_Email__c": "alice@contoso.com",
            "Eligibility_Reason__c": "external_participants",
            "Recording_Url__c": "https://contoso.sharepoint.com/rec.mp4",
            "Internal_Talk_Ratio__c": 50.0,
            "Question_Count__c": 2,
            # Turns: Alice 0-5, Carol 5-15, Alice 15-20, an unknown 20-30 (tests/workers/
            # test_insights.py pins each figure on its own).
            "Speaker_Count__c": 3,
            "Longest_Monologue_Seconds__c": 5,
            "Longest_Customer_Story_Seconds__c": 10,
            "Interactivity__c": 6.0,
            "Patience_Seconds__c": 0.0,
            "Next_Steps__c": None,
            "Related_Account__c": "001A",
            "Related_Opportunity__c": "006B",
        }

    def test_no_related_leaves_the_fields_out(self) -> None:
        record = mapping.meeting_record(meeting(), parse(VTT), {}, Related())
        assert "Related_Account__c" not in record and "Related_Opportunity__c" not in record
        assert record["Internal_Talk_Ratio__c"] is None

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
            (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
             "2026-01-02T01:04:05.000Z"),
            (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000Z"),
        ],
    )  # fmt: skip
    def test_datetimes(self, value: datetime, text: str) -> None:
        assert mapping.sf_datetime(value) == text

    def test_long_or_empty_subject(self) -> None:
        t = parse(VTT)
        assert (
            mapping.meeting_record(meeting(subject="x" * 300), t, {}, Related())["Name"] == "x" * 80
        )
        assert (
            mapping.meeting_record(meeting(subject="  "), t, {}, Related())["Name"]
            == "Teams meeting"
        )


class TestTalkTime:
    """Speakers are matched to participants by display name; the ratio is internal vs external."""

    def test_seconds_per_participant(self) -> None:
        talk = mapping.talk_seconds(meeting(), parse(VTT))
        assert talk == {"id-alice": 10.0, "carol@fabrikam.com": 10.0, "+14255550100": 0.0}

    @pytest.mark.parametrize(
        ("talk", "ratio"),
        [
            ({"id-alice": 30.0, "carol@fabrikam.com": 10.0}, 75.0),
            ({"id-alice": 0.0, "carol@fabrikam.com": 10.0}, 0.0),
            ({"id-alice": 1.0, "carol@fabrikam.com": 2.0, "+14255550100": 50.0}, 33.33),
            ({}, None),
        ],
    )
    def test_ratio(self, talk: dict[str, float], ratio: float | None) -> None:
        assert mapping.internal_talk_ratio(meeting(), talk) == ratio


class TestParticipants:
    """Each participant row carries its match, its role, its talk time and its meeting's key."""

    def test_rows(self) -> None:
        m = meeting()
        matches = {"carol@fabrikam.com": PersonMatch(contact_id="003C"),
                   "alice@contoso.com": PersonMatch(user_id="005A")}  # fmt: skip
        rows = mapping.participant_records(
            m, {"id-alice": 10.4, "carol@fabrikam.com": 9.6}, matches
        )
        alice, carol, phone = rows
        assert alice["User__c"] == "005A" and alice["Contact__c"] is None
        assert alice["Is_External__c"] is False and alice["Role__c"] == "organizer"
        assert alice["Meeting__r"] == {"Meeting_Key__c": "m-001"}
        assert carol["Contact__c"] == "003C" and carol["Lead__c"] is None
        assert carol["Is_External__c"] is True and carol["Talk_Time_Seconds__c"] == 10
        assert carol["Meeting__r"] == {"Meeting_Key__c": "m-001"}
        assert carol["attributes"] == {"type": "Teams_Meeting_Participant__c"}
        assert phone["Email__c"] is None and phone["Name"] == "+14255550100"
        assert phone["Contact__c"] is phone["Lead__c"] is phone["User__c"] is None

    def test_one_row_per_key(self) -> None:
        twice = meeting(participants=(ALICE, CAROL, ALICE))
        rows = mapping.participant_records(twice, {}, {})
        assert [r["Email__c"] for r in rows] == ["alice@contoso.com", "Carol@Fabrikam.com"]


class TestTranscript:
    """Text__c holds `Speaker: words` in spoken order; past 131,072 characters it is cut."""

    def test_short(self) -> None:
        record, truncated = mapping.transcript_record(meeting(), parse(VTT))
        assert not truncated and record["Is_Truncated__c"] is False
        assert str(record["Text__c"]).splitlines() == [
            "Alice Adams: Hello Carol.",
            "Carol Diaz: We need it by March? Or April?",
            "alice ADAMS: Yes.",
            "Nobody Known: Hi.",
        ]
        assert record["Cue_Count__c"] == 4
        assert record["Meeting__r"] == {"Meeting_Key__c": "m-001"}

    def test_long_is_truncated(self) -> None:
        words = "word " * 40
        cues = "".join(
            f"00:{i // 60:02d}:{i % 60:02d}.000 --> 00:{i // 60:02d}:{i % 60:02d}.500\n"
            f"<v Carol Diaz>{words}</v>\n\n"
            for i in range(1000)
        )
        vtt = "WEBVTT\n\n" + cues
        record, truncated = mapping.transcript_record(meeting(transcript_vtt=vtt), parse(vtt))
        assert truncated and record["Is_Truncated__c"] is True
        assert len(str(record["Text__c"])) <= SALESFORCE_TEXT_LIMIT
        assert str(record["Text__c"]).startswith("Carol Diaz: word word")

    def test_file_holds_the_full_webvtt(self) -> None:
        m = meeting()
        file = mapping.transcript_file(m, m.transcripts[0], "@{meeting.id}")
        assert base64.b64decode(str(file["VersionData"])).decode() == VTT
        assert file["FirstPublishLocationId"] == "@{meeting.id}"
        assert str(file["PathOnClient"]).endswith(".vtt")
        assert file == mapping.transcript_file(meeting(), m.transcripts[0], "@{meeting.id}")


class TestFieldLimits:
    """Values Salesforce would reject are left out or cut, so one bad value cannot fail a push."""

    @pytest.mark.parametrize(
        ("address", "kept"),
        [
            ("carol@fabrikam.com", True),
            ("a@b.co", True),
            ("user@localhost", False),
            ("no-at-sign", False),
            ("two@@x.com", False),
            ("sp ace@x.com", False),
            ("x" * 75 + "@x.com", False),
            (None, False),
        ],
    )
    def test_email(self, address: str | None, kept: bool) -> None:
        assert mapping.email_field(address) == (address if kept else None)

    def test_long_values(self) -> None:
        m = meeting(online_meeting_id="M" * 300, recording_url="https://x/" + "r" * 5000)
        record = mapping.meeting_record(m, parse(VTT), {}, Related())
        assert record["Online_Meeting_Id__c"] == "M" * 255
        assert record["Recording_Url__c"] is None
        bad = person("k", "Guest", "guest@localhost", "external")
        rows = mapping.participant_records(meeting(participants=(bad,)), {}, {})
        assert rows[0]["Email__c"] is None and rows[0]["Name"] == "Guest"
