"""Participants from Graph JSON: identity kinds, and sources joined by directory id."""

from __future__ import annotations

from policy import Kind, Participant, classify
from workers import participants

HOME = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"


def user(uid: str, tenant: str, upn: str | None = None, name: str = "X") -> dict[str, object]:
    u: dict[str, object] = {"id": uid, "displayName": name, "tenantId": tenant}
    if upn:
        u["userPrincipalName"] = upn
    return {"user": u, "guest": None, "phone": None}


class TestFromIdentity:
    """Each communicationsIdentitySet kind becomes the participant the policy expects."""

    def test_kinds(self) -> None:
        home = participants.from_identity(user("a", HOME, "alice@contoso.com"))
        assert home == Participant(display_name="X", directory_id="a", tenant_id=HOME,
                                   call_record_upn="alice@contoso.com")  # fmt: skip
        phone = participants.from_identity({"user": None, "phone": {"id": "+14255550100"}})
        assert phone is not None and phone.phone == "+14255550100"
        guest = participants.from_identity({"guest": {"id": "g1", "displayName": "Visitor"}})
        assert guest is not None and guest.is_guest and guest.directory_id == "g1"
        assert participants.from_identity({"user": None, "guest": None}) is None
        nameless = {"id": "teamsvisitor:0a1b", "displayName": None, "tenantId": None}
        visitor = participants.from_identity({"guest": None, "user": nameless})
        assert visitor is not None and visitor.is_guest and visitor.tenant_id is None
        assert visitor.directory_id == "teamsvisitor:0a1b"
        assert visitor.display_name == "Anonymous visitor"


class TestMerge:
    """Attendance e-mails join callRecord people by id; rows without an address add nobody."""

    def test_join(self) -> None:
        organizer = participants.from_identity(user("a", HOME), role="organizer")
        assert organizer is not None
        joined = [
            participants.from_identity(user("a", HOME, "alice@contoso.com")),
            participants.from_identity(user("c", OTHER, None, "External user")),
            participants.from_identity({"phone": {"id": "+14255550100"}}),
        ]
        attendance = {"attendanceRecords": [
            {"emailAddress": "alice@contoso.com", "role": "Organizer", "identity": {"id": "a"}},
            {"emailAddress": "carol@fabrikam.com", "role": "Attendee", "identity": {"id": "c"}},
            {"emailAddress": "", "role": "Attendee", "identity": {"id": "phone-row"}},
        ]}  # fmt: skip
        meeting = {"participants": {"organizer": {"upn": "alice@contoso.com",
                                                  "identity": user("a", HOME)}}}  # fmt: skip
        org, people = participants.merge(organizer, [p for p in joined if p], attendance, meeting)
        assert org.attendee_upn == "alice@contoso.com"
        assert org.attendance_email == "alice@contoso.com"
        carol = next(p for p in people if p.directory_id == "c")
        assert carol.attendance_email == "carol@fabrikam.com"
        assert classify(carol, ["contoso.com"], HOME) is Kind.EXTERNAL
        assert len(people) == 2  # carol and the phone; no twin for the phone row

    def test_transcript_path_takes_everyone_from_attendance(self) -> None:
        organizer = Participant(directory_id="a", role="organizer")
        attendance = {"attendanceRecords": [
            {"emailAddress": "kim@fabrikam.com", "identity": {"id": "k", "displayName": "Kim"}},
            {"emailAddress": "", "identity": {"id": "anon", "displayName": "Visitor"}},
        ]}  # fmt: skip
        _, people = participants.merge(organizer, (), attendance, None)
        assert [p.attendance_email for p in people] == ["kim@fabrikam.com", None]
