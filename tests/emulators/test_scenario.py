"""The scenario file of DESIGN §7: parsing, defaults and field-naming validation errors."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from emulators.scenario import (
    APP_PERMISSIONS,
    DEFAULT_PATH,
    Participant,
    ScenarioError,
    load,
    parse,
)

TENANT = "aaaaaaaa-1111-2222-3333-444444444444"
ALICE = "11111111-aaaa-4bbb-8ccc-000000000001"
BOB = "11111111-aaaa-4bbb-8ccc-000000000002"


def doc() -> dict[str, Any]:
    return {
        "tenant": {"id": TENANT, "domains": ["contoso.com"]},
        "users": [
            {"id": ALICE, "upn": "alice@contoso.com", "name": "Alice Adams", "eci": True},
            {"id": BOB, "upn": "bob@contoso.com", "name": "Bob Brown"},
        ],
        "meetings": [
            {
                "id": "m-001",
                "subject": "Renewal call",
                "organizer": "alice@contoso.com",
                "start": "2026-11-20T15:00:00Z",
                "end": "2026-11-20T15:30:00Z",
                "participants": [
                    {"email": "carol@fabrikam.com", "name": "Carol Diaz"},
                    {"phone": "+14255550100"},
                    {"guest": "Visitor"},
                ],
            }
        ],
    }


class TestParse:
    """A valid document becomes frozen dataclasses with the documented defaults filled in."""

    def test_defaults(self) -> None:
        s = parse(doc())
        m = s.meetings[0]
        assert s.policy == {} and s.salesforce == {}
        assert s.users[1].eci is False
        assert m.transcript is None and m.transcript_ready_after_s == 0 and m.recording is False
        assert m.transcripts == () and m.callrecord_after_s == 0
        assert m.start == dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC)

    def test_organizer_always_takes_part(self) -> None:
        m = parse(doc()).meetings[0]
        assert m.participants[0] == Participant("user", upn="alice@contoso.com", name="Alice Adams")
        assert [p.kind for p in m.participants] == ["user", "external", "phone", "guest"]

    def test_organizer_listed_is_not_added_again(self) -> None:
        d = doc()
        people = [{"upn": "ALICE@Contoso.com"}, {"upn": "bob@contoso.com"}]
        d["meetings"][0]["participants"] = people
        m = parse(d).meetings[0]
        assert [p.upn for p in m.participants] == ["alice@contoso.com", "bob@contoso.com"]

    def test_same_person_twice_is_kept_twice(self) -> None:
        d = doc()
        people = [{"email": "c@fabrikam.com"}, {"email": "c@fabrikam.com"}]
        d["meetings"][0]["participants"] = people
        m = parse(d).meetings[0]
        assert [p.email for p in m.participants[1:]] == ["c@fabrikam.com", "c@fabrikam.com"]

    def test_addresses_compare_case_insensitively(self) -> None:
        d = doc()
        d["meetings"][0]["organizer"] = "Alice@CONTOSO.com"
        assert parse(d).meetings[0].organizer == "alice@contoso.com"

    def test_external_tenant_and_offsets(self) -> None:
        d = doc()
        d["meetings"][0]["participants"] = [{"email": "g@fabrikam.com", "tenant": TENANT.upper()}]
        d["meetings"][0]["start"] = "2026-11-20T16:00:00+01:00"
        m = parse(d).meetings[0]
        assert m.participants[1].tenant == TENANT
        assert m.start == dt.datetime(2026, 11, 20, 15, tzinfo=dt.UTC)

    def test_load_reads_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "s.json"
        path.write_text(json.dumps(doc()))
        assert load(path).meetings[0].id == "m-001"
        path.write_text("{nope")
        with pytest.raises(ScenarioError, match="not JSON"):
            load(path)

    def test_default_file_loads(self) -> None:
        assert load().tenant.id == load(DEFAULT_PATH).tenant.id


def _set(path: str, value: Any) -> dict[str, Any]:
    """`doc()` with the value at a dotted path (list indexes as numbers) set, or deleted."""
    d = doc()
    *parents, last = path.split(".")
    node: Any = d
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return d


DELETE = object()
BAD = [
    ("tenant.id", "nope", "tenant.id: 'nope' is not a GUID"),
    ("tenant.domains", [], "tenant.domains: needs at least one domain"),
    ("tenant.domains", ["not a domain"], r"tenant.domains\[0\]: "),
    ("tenant.colour", "red", "tenant.colour: unknown field"),
    ("tenant.app_permissions", "CallRecords.Read.All", "tenant.app_permissions: must be a list"),
    ("tenant.app_permissions", [""], r"tenant.app_permissions\[0\]: must be a non-empty"),
    ("tenant.access_policy", "everyone", 'tenant.access_policy: must be "global" or a list'),
    ("tenant.access_policy", ["zed@contoso.com"], r"access_policy\[0\]: .* not one of users"),
    ("users", [], "users: needs at least one user"),
    ("users.1.id", ALICE, r"users\[1\].id: .* repeats users\[0\].id"),
    ("users.1.upn", "ALICE@contoso.com", r"users\[1\].upn: .* repeats users\[0\]"),
    ("users.0.eci", "yes", r"users\[0\].eci: must be true or false"),
    ("users.0.upn", "alice", r"users\[0\].upn: 'alice' is not an e-mail address"),
    ("meetings.0.organizer", "zed@contoso.com", r"meetings\[0\].organizer: .* not one of users"),
    ("meetings.0.end", "2026-11-20T15:00:00Z", r"meetings\[0\].end: must be after start"),
    ("meetings.0.start", "2026-11-20T15:00:00", r"meetings\[0\].start: .* needs a time zone"),
    ("meetings.0.start", "soon", r"meetings\[0\].start: 'soon' is not an ISO 8601 time"),
    ("meetings.0.subject", DELETE, r"meetings\[0\].subject: is required"),
    ("meetings.0.transcript", "hello", r"meetings\[0\].transcript: WebVTT must start"),
    ("meetings.0.transcript_ready_after_s", -1, r"transcript_ready_after_s: must not be negative"),
    ("meetings.0.transcript_ready_after_s", "8", r"transcript_ready_after_s: must be a number"),
    ("meetings.0.transcripts", "WEBVTT\n", r"meetings\[0\].transcripts: must be a list"),
    ("meetings.0.callrecord_after_s", -1, r"callrecord_after_s: must not be negative"),
    ("meetings.0.recording", 1, r"meetings\[0\].recording: must be true or false"),
    ("meetings.0.allow_recording", "no", r"meetings\[0\].allow_recording: must be true or f"),
    ("meetings.0.participants.1", {"name": "X"}, r"participants\[1\]: needs one of upn, email"),
    ("meetings.0.participants.1", {"upn": "bob@contoso.com", "phone": "+14255550100"},
     r"participants\[1\]: has upn, phone; needs exactly one of"),
    ("meetings.0.participants.1", {"phone": "555-0100"}, r"participants\[1\].phone: .* E.164"),
    ("meetings.0.participants.1", {"upn": "zed@contoso.com"}, r"participants\[1\].upn: .*users"),
    ("meetings.0.participants.1", {"email": "bob@contoso.com"}, r"list it as upn"),
    ("meetings.0.participants.1", {"email": "x@y.com", "tenant": "t"}, r"\[1\].tenant: .*GUID"),
    ("meetings.0.participants.1", {"phone": "+14255550100", "name": "X"},
     r"participants\[1\].name: unknown field"),
    ("meetings.0.participants", {}, r"meetings\[0\].participants: must be a list"),
    ("policy", {"min_duration_seconds": -5}, "policy.min_duration_seconds: must not be negative"),
    ("policy", {"excluded": "rival.com"}, "policy.excluded: must be a list"),
    ("policy", {"exclude": []}, "policy.exclude: unknown field"),
    ("policy", {"trackers": ["Rival"]}, "policy.trackers: must be an object"),
    ("policy", {"trackers": {"rivals": "Rival"}}, "policy.trackers.rivals: must be a list"),
    ("policy", {"trackers": {"rivals": [""]}}, r"policy.trackers.rivals\[0\]: must be a non-empty"),
    ("salesforce", {"Contact": [1]}, r"salesforce.Contact\[0\]: must be an object"),
    ("salesforce", [], "salesforce: must be an object"),
]  # fmt: skip


class TestValidation:
    """Every bad field is refused with a message that starts with its path."""

    @pytest.mark.parametrize(("path", "value", "message"), BAD)
    def test_bad_field(self, path: str, value: Any, message: str) -> None:
        with pytest.raises(ScenarioError, match=message):
            parse(_set(path, value))

    def test_recording_turned_off_has_no_recording(self) -> None:
        d = _set("meetings.0.recording", True)
        d["meetings"][0]["allow_recording"] = False
        with pytest.raises(ScenarioError, match=r"meetings\[0\].recording: .*turned off"):
            parse(d)
        d["meetings"][0]["recording"] = False
        assert parse(d).meetings[0].allow_recording is False
        assert parse(doc()).meetings[0].allow_recording is True

    def test_duplicate_meeting_id(self) -> None:
        d = doc()
        d["meetings"].append(copy.deepcopy(d["meetings"][0]))
        with pytest.raises(ScenarioError, match=r"meetings\[1\].id: 'm-001' repeats meetings\[0\]"):
            parse(d)

    def test_consent_and_access_policy(self) -> None:
        """Absent: every role DESIGN §6 names and a global policy; else as written."""
        plain = parse(doc()).tenant
        assert plain.app_permissions == APP_PERMISSIONS and plain.access_policy == "global"
        d = doc()
        d["tenant"]["app_permissions"] = ["CallRecords.Read.All"]
        d["tenant"]["access_policy"] = ["ALICE@contoso.com"]
        tenant = parse(d).tenant
        assert tenant.app_permissions == ("CallRecords.Read.All",)
        assert tenant.access_policy == ("ALICE@contoso.com",)

    def test_not_an_object(self) -> None:
        with pytest.raises(ScenarioError, match="scenario: must be an object"):
            parse([])


# What each meeting of the built-in scenario is there to show (DESIGN §4): reason, outcome.
EXPECTED = {
    "m-001": ("external_participants", "pushed"),
    "m-002": ("external_participants", "pushed"),  # with an anonymous guest
    "m-003": ("too_short", "skipped"),
    "m-004": ("recorder_not_eci_user", "skipped"),
    "m-005": ("excluded_participant", "skipped"),
    "m-006": ("solo_eci_user", "pushed"),
    "m-007": ("no_external_participants", "skipped"),
    "m-008": ("external_participants", "no_transcript"),
    "m-009": ("external_participants", "pushed"),  # the transcript over 131,072 characters
    "m-010": ("no_external_participants", "skipped"),  # an internal subdomain, own tenant
    "m-011": ("external_participants", "pushed"),  # a B2B guest with a customer's address
    "m-012": ("external_participants", "pushed"),  # the late transcript
    "m-013": ("no_external_participants", "skipped"),  # a phone dial-in proves nothing
    "m-014": ("external_participants", "pushed"),  # a customer on two devices
    "m-015": ("no_external_participants", "skipped"),  # anonymous guests prove nothing
    "m-016": ("external_participants", "pushed"),
    "m-017": ("excluded_participant", "skipped"),  # a subdomain of an excluded domain
    "m-018": ("solo_eci_user", "no_transcript"),
    "m-019": ("external_participants", "pushed"),
    "m-020": ("recorder_not_eci_user", "skipped"),
}


def _policy_view(world: Any, meeting_id: str) -> Any:
    """The meeting as the product sees it from the emulator's callRecord and attendance."""
    from emulators.graph import attendance, callrecords
    from policy import Meeting, Participant

    emails = {r["identity"]["id"]: r["emailAddress"] for r in attendance.records(world, meeting_id)}
    people = []
    for entry in callrecords.participants(world, meeting_id):
        ident = entry["identity"]
        if ident["user"]:
            user = ident["user"]
            people.append(Participant(
                display_name=user["displayName"], directory_id=user["id"],
                tenant_id=user["tenantId"], attendance_email=emails.get(user["id"]) or None,
                call_record_upn=user.get("userPrincipalName"),
            ))  # fmt: skip
        elif ident["phone"]:
            people.append(Participant(phone=ident["phone"]["id"]))
        else:
            people.append(Participant(display_name=ident["guest"]["displayName"], is_guest=True))
    organizer = next(p for p in people if p.directory_id == world.organizer_id(meeting_id))
    m = world.meeting(meeting_id)
    return Meeting(organizer=organizer, participants=tuple(people), start=m.start, end=m.end)


class TestDefaultScenario:
    """The built-in scenario shows every reason code and outcome of DESIGN §4, as intended."""

    def test_every_reason_and_outcome_is_covered(self) -> None:
        s = load()
        assert [m.id for m in s.meetings] == sorted(EXPECTED)
        reasons = {r for r, _ in EXPECTED.values()}
        assert reasons == {
            "too_short",
            "recorder_not_eci_user",
            "excluded_participant",
            "external_participants",
            "solo_eci_user",
            "no_external_participants",
        }
        assert {o for _, o in EXPECTED.values()} == {"pushed", "skipped", "no_transcript"}

    def test_each_meeting_decides_as_intended(self) -> None:
        from emulators.graph.world import World
        from policy import PolicySettings, decide

        s = load()
        world = World(s)
        settings = PolicySettings.from_mapping(s.policy)
        eci = [u.id for u in s.users if u.eci]
        for m in s.meetings:
            decision = decide(_policy_view(world, m.id), home_tenant_id=s.tenant.id,
                              eci_users=eci, settings=settings)  # fmt: skip
            reason, outcome = EXPECTED[m.id]
            assert (m.id, decision.reason.value) == (m.id, reason)
            got = (
                "skipped"
                if not decision.eligible
                else "pushed"
                if m.transcript
                else "no_transcript"
            )
            assert (m.id, got) == (m.id, outcome)

    def test_features_the_demo_relies_on(self) -> None:
        s = load()
        by_id = {m.id: m for m in s.meetings}
        assert sum(u.eci for u in s.users) >= 3 and any(not u.eci for u in s.users)
        long = by_id["m-009"].transcript or ""
        assert len(long) > 131_072 and "NOTE" in long and "<v " in long
        assert by_id["m-012"].transcript_ready_after_s >= 5
        assert len(by_id["m-019"].transcripts) == 2  # transcription stopped and restarted
        assert by_id["m-011"].callrecord_after_s >= 3  # the transcript comes first, live
        kinds = {p.kind for m in s.meetings for p in m.participants}
        assert kinds == {"user", "external", "phone", "guest"}
        twice = by_id["m-014"].participants
        assert len({p.email for p in twice if p.kind == "external"}) < sum(
            p.kind == "external" for p in twice
        )
        assert any(p.tenant == s.tenant.id for p in by_id["m-011"].participants)
        assert any(m.recording for m in s.meetings)
        # A connected organizer's meeting with recording turned off: no OneDrive listing.
        assert (
            not by_id["m-014"].allow_recording and by_id["m-014"].organizer == "alice@contoso.com"
        )
        assert all(m.subject and not m.subject.startswith("m-") for m in s.meetings)
        assert {"Account", "Contact", "Lead", "Opportunity"} <= set(s.salesforce)


class TestBuiltInScenarioShowsLiveShapes:
    """The demo's built-in scenario holds the forms Graph produces live (issue: live on day
    one): a transcript in Graph's documented short timestamps (`0:0:0.0 --> 0:0:5.320`), a
    meeting with two transcripts, a transcript-first meeting whose callRecord comes later,
    and an anonymous visitor."""

    def test_shapes(self) -> None:
        import re

        from emulators.scenario import load

        built_in = load()
        texts = [t for m in built_in.meetings for t in m.transcripts]
        assert any(re.search(r"^\d:\d:\d+\.\d+ --> ", t, re.M) for t in texts)
        assert any(len(m.transcripts) >= 2 for m in built_in.meetings)
        assert any(m.callrecord_after_s > 0 and m.transcripts for m in built_in.meetings)
        assert any(p.kind == "guest" for m in built_in.meetings for p in m.participants)
