"""The eligibility rules of §4 and their order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from policy.config import PolicySettings
from policy.models import Meeting, Participant, Reason
from policy.rules import decide, excluded_entry

HOME = "home-tenant"
START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SETTINGS = PolicySettings(internal_domains=("contoso.com",), excluded=("rival.com",))
ECI = frozenset({"alice-id", "dave@contoso.com"})

ALICE = Participant(
    "Alice", directory_id="alice-id", tenant_id=HOME, call_record_upn="alice@contoso.com"
)
BOB = Participant("Bob", directory_id="bob-id", tenant_id=HOME, call_record_upn="bob@contoso.com")
CAROL = Participant("Carol", attendance_email="carol@fabrikam.com")
FED = Participant("External user", directory_id="fed-id", tenant_id="other-tenant")
RIVAL = Participant("Rex", attendance_email="rex@sales.rival.com")
PHONE = Participant(phone="+14255550100")
GUEST = Participant("Visitor", is_guest=True)


def meeting(*others: Participant, minutes: float = 30, organizer: Participant = ALICE) -> Meeting:
    return Meeting(organizer, (organizer, *others), START, START + timedelta(minutes=minutes))


def run(m: Meeting, settings: PolicySettings = SETTINGS) -> tuple[bool, Reason]:
    d = decide(m, home_tenant_id=HOME, eci_users=ECI, settings=settings)
    return d.eligible, d.reason


class TestRules:
    """Each rule fires on its own case with the eligibility of §4."""

    @pytest.mark.parametrize(
        ("m", "eligible", "reason"),
        [
            (meeting(CAROL, minutes=0.5), False, Reason.TOO_SHORT),
            (meeting(CAROL, minutes=-5), False, Reason.TOO_SHORT),
            (meeting(CAROL, organizer=BOB), False, Reason.RECORDER_NOT_ECI_USER),
            (meeting(RIVAL), False, Reason.EXCLUDED_PARTICIPANT),
            (meeting(CAROL), True, Reason.EXTERNAL_PARTICIPANTS),
            (meeting(FED), True, Reason.EXTERNAL_PARTICIPANTS),
            (meeting(BOB, CAROL, PHONE), True, Reason.EXTERNAL_PARTICIPANTS),
            (meeting(), True, Reason.SOLO_ECI_USER),
            (Meeting(ALICE, (), START, START + timedelta(hours=1)), True, Reason.SOLO_ECI_USER),
            (meeting(BOB), False, Reason.NO_EXTERNAL_PARTICIPANTS),
            (meeting(PHONE), False, Reason.NO_EXTERNAL_PARTICIPANTS),
            (meeting(GUEST), False, Reason.NO_EXTERNAL_PARTICIPANTS),
        ],
    )
    def test_rule(self, m: Meeting, eligible: bool, reason: Reason) -> None:
        assert run(m) == (eligible, reason)

    def test_exactly_min_duration_is_long_enough(self) -> None:
        assert run(meeting(CAROL, minutes=1)) == (True, Reason.EXTERNAL_PARTICIPANTS)

    def test_min_duration_is_configurable(self) -> None:
        settings = PolicySettings(internal_domains=("contoso.com",), min_duration_seconds=0)
        assert run(meeting(CAROL, minutes=0), settings) == (True, Reason.EXTERNAL_PARTICIPANTS)
        settings = PolicySettings(internal_domains=("contoso.com",), min_duration_seconds=3600)
        assert run(meeting(CAROL, minutes=59), settings) == (False, Reason.TOO_SHORT)

    def test_reason_values_are_the_public_codes(self) -> None:
        assert [r.value for r in Reason] == [
            "too_short",
            "recorder_not_eci_user",
            "excluded_participant",
            "external_participants",
            "solo_eci_user",
            "no_external_participants",
        ]


class TestOrder:
    """When several rules could fire, the earliest in §4's table gives the reason."""

    @pytest.mark.parametrize(
        ("m", "reason"),
        [
            (meeting(RIVAL, minutes=0.5), Reason.TOO_SHORT),
            (meeting(RIVAL, minutes=0.5, organizer=BOB), Reason.TOO_SHORT),
            (meeting(minutes=0.5), Reason.TOO_SHORT),
            (meeting(RIVAL, organizer=BOB), Reason.RECORDER_NOT_ECI_USER),
            (meeting(organizer=BOB), Reason.RECORDER_NOT_ECI_USER),
            (meeting(RIVAL, CAROL), Reason.EXCLUDED_PARTICIPANT),
            (meeting(CAROL, BOB), Reason.EXTERNAL_PARTICIPANTS),
        ],
    )
    def test_first_rule_wins(self, m: Meeting, reason: Reason) -> None:
        assert run(m)[1] is reason

    def test_excluded_organizer_is_excluded(self) -> None:
        settings = PolicySettings(internal_domains=("contoso.com",), excluded=("contoso.com",))
        assert run(meeting(), settings) == (False, Reason.EXCLUDED_PARTICIPANT)


class TestEciRegistry:
    """The organizer is an ECI user when the registry holds its directory id or any address."""

    @pytest.mark.parametrize(
        ("organizer", "registry", "eci"),
        [
            (ALICE, {"alice-id"}, True),
            (ALICE, {"ALICE-ID"}, True),
            (ALICE, {"Alice@Contoso.COM"}, True),
            (ALICE, {"bob-id", "bob@contoso.com"}, False),
            (ALICE, set(), False),
            (Participant("Dave", attendance_email="dave@contoso.com"), {"dave@contoso.com"}, True),
            (Participant("Dave", attendee_upn="dave@contoso.com"), {"dave@contoso.com"}, True),
            (Participant("Dave"), {"Dave", "dave"}, False),
        ],
    )
    def test_registry(self, organizer: Participant, registry: set[str], eci: bool) -> None:
        m = meeting(CAROL, organizer=organizer)
        d = decide(m, home_tenant_id=HOME, eci_users=registry, settings=SETTINGS)
        assert (d.reason is not Reason.RECORDER_NOT_ECI_USER) is eci

    def test_organizer_record_in_the_list_adds_identifiers(self) -> None:
        bare = Participant("Alice", directory_id="alice-id")
        m = Meeting(bare, (ALICE, CAROL), START, START + timedelta(hours=1))
        d = decide(m, home_tenant_id=HOME, eci_users={"alice@contoso.com"}, settings=SETTINGS)
        assert d.reason is Reason.EXTERNAL_PARTICIPANTS


class TestExcluded:
    """An address, its domain or any parent domain on `excluded` excludes the meeting."""

    @pytest.mark.parametrize(
        ("excluded", "address", "entry"),
        [
            (("rival.com",), "rex@rival.com", "rival.com"),
            (("rival.com",), "rex@sales.rival.com", "rival.com"),
            (("rival.com",), "rex@a.b.rival.com", "rival.com"),
            (("Rival.COM.",), "rex@RIVAL.com", "rival.com"),
            (("sales.rival.com",), "rex@rival.com", None),
            (("rival.com",), "rex@notrival.com", None),
            (("rival.com",), "rex@rival.com.evil.io", None),
            (("rex@rival.com",), "REX@rival.com", "rex@rival.com"),
            (("rex@rival.com",), "rita@rival.com", None),
            (("rex@rival.com",), "rex@sales.rival.com", None),
            (("bücher.example",), "kim@xn--bcher-kva.example", "xn--bcher-kva.example"),
            (("xn--bcher-kva.example",), "kim@shop.BÜCHER.example", "xn--bcher-kva.example"),
            (("rex@rival.com", "rival.com"), "rex@rival.com", "rex@rival.com"),
        ],
    )
    def test_entry(self, excluded: tuple[str, ...], address: str, entry: str | None) -> None:
        settings = PolicySettings(excluded=excluded)
        assert excluded_entry(Participant(attendance_email=address), settings.excluded) == entry

    def test_decision_names_participant_and_entry(self) -> None:
        d = decide(meeting(CAROL, RIVAL), home_tenant_id=HOME, eci_users=ECI, settings=SETTINGS)
        assert d.excluded_participant == RIVAL
        assert d.excluded_by == "rival.com"
        assert "rex@sales.rival.com" in d.explain()
        assert "rival.com" in d.explain()

    def test_participants_without_address_are_never_excluded(self) -> None:
        settings = PolicySettings(excluded=("com", "rival.com"))
        assert excluded_entry(FED, settings.excluded) is None
        assert excluded_entry(PHONE, settings.excluded) is None

    def test_b2b_guest_upn_host_does_not_trigger_exclusion(self) -> None:
        guest = Participant(call_record_upn="kim_rival.com#EXT#@contoso.onmicrosoft.com")
        assert excluded_entry(guest, ("onmicrosoft.com",)) is None


class TestUnidentified:
    """Unidentified participants are not external unless configured, but end a solo meeting."""

    @pytest.mark.parametrize(
        ("other", "count", "eligible", "reason"),
        [
            (PHONE, False, False, Reason.NO_EXTERNAL_PARTICIPANTS),
            (PHONE, True, True, Reason.EXTERNAL_PARTICIPANTS),
            (GUEST, False, False, Reason.NO_EXTERNAL_PARTICIPANTS),
            (GUEST, True, True, Reason.EXTERNAL_PARTICIPANTS),
        ],
    )
    def test_both_ways(
        self, other: Participant, count: bool, eligible: bool, reason: Reason
    ) -> None:
        settings = PolicySettings(
            internal_domains=("contoso.com",), count_unidentified_as_external=count
        )
        d = decide(meeting(other), home_tenant_id=HOME, eci_users=ECI, settings=settings)
        assert (d.eligible, d.reason) == (eligible, reason)
        assert d.unidentified == (other,)
        assert d.external == ()
        assert d.unidentified_counted_as_external is count

    def test_internal_only_meeting_with_setting_stays_ineligible(self) -> None:
        settings = PolicySettings(
            internal_domains=("contoso.com",), count_unidentified_as_external=True
        )
        assert run(meeting(BOB), settings) == (False, Reason.NO_EXTERNAL_PARTICIPANTS)


class TestDecisionContents:
    """A decision splits the distinct participants and explains itself."""

    def test_split(self) -> None:
        d = decide(
            meeting(BOB, CAROL, FED, PHONE, GUEST, CAROL, ALICE),
            home_tenant_id=HOME,
            eci_users=ECI,
            settings=SETTINGS,
        )
        assert set(d.internal) == {ALICE, BOB}
        assert set(d.external) == {CAROL, FED}
        assert set(d.unidentified) == {PHONE, GUEST}
        assert d.duration_seconds == 1800
        assert d.organizer == ALICE

    def test_to_dict_is_json_ready(self) -> None:
        d = decide(meeting(CAROL), home_tenant_id=HOME, eci_users=ECI, settings=SETTINGS)
        data = d.to_dict()
        assert data["eligible"] is True
        assert data["reason"] == "external_participants"
        assert data["external"] == ["carol@fabrikam.com"]
        assert data["internal"] == ["alice@contoso.com"]
        assert data["explanation"].startswith("eligible (external_participants)")

    @pytest.mark.parametrize(
        ("m", "fragment"),
        [
            (meeting(CAROL, minutes=0.5), "30 s"),
            (meeting(CAROL, organizer=BOB), "bob@contoso.com is not an ECI user"),
            (meeting(), "only participant"),
            (meeting(BOB), "no participant is external"),
        ],
    )
    def test_explain(self, m: Meeting, fragment: str) -> None:
        d = decide(m, home_tenant_id=HOME, eci_users=ECI, settings=SETTINGS)
        assert fragment in d.explain()

    def test_mixed_naive_and_aware_times_are_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone"):
            Meeting(ALICE, (), START, datetime(2026, 11, 20, 16, 0))
