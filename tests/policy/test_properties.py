"""Properties of the policy that must hold for any meeting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from policy.config import PolicySettings
from policy.domains import normalise_domain
from policy.models import Meeting, Participant, Reason
from policy.participants import Kind, classify
from policy.rules import decide, excluded_entry

HOME = "home-tenant"
START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
INTERNAL = ("contoso.com", "xn--bcher-kva.example")
EXTERNAL_DOMAINS = ["fabrikam.com", "contoso.com.evil.io", "notcontoso.com", "rival.com"]
DOMAINS = ["contoso.com", "sales.contoso.com", "bücher.example", *EXTERNAL_DOMAINS]
ORGANIZER = Participant(
    "Alice", directory_id="alice-id", tenant_id=HOME, call_record_upn="alice@contoso.com"
)

names = st.sampled_from(["", "Kim", "Visitor", "External user"])
ids = st.none() | st.sampled_from(["id-1", "id-2", "ID-1", "alice-id", "g-1"])
tenants = st.none() | st.sampled_from([HOME, "other-tenant", ""])
locals_ = st.sampled_from(["kim", "Kim", "rex", "alice"])
addresses = (
    st.none()
    | st.sampled_from(["", "Kim", "kim_x.com#EXT#@contoso.onmicrosoft.com"])
    | (st.builds(lambda loc, dom: f"{loc}@{dom}", locals_, st.sampled_from(DOMAINS)))
)
participants = st.builds(
    Participant,
    display_name=names,
    directory_id=ids,
    tenant_id=tenants,
    attendance_email=addresses,
    call_record_upn=addresses,
    attendee_upn=addresses,
    phone=st.none() | st.sampled_from(["+14255550100", "+1 425 555 0100", "+4930"]),
    is_guest=st.booleans(),
)
policy_settings = st.builds(
    PolicySettings,
    internal_domains=st.just(INTERNAL),
    excluded=st.sampled_from([(), ("rival.com",), ("kim@fabrikam.com",), ("com",)]),
    min_duration_seconds=st.sampled_from([0, 60, 600]),
    count_unidentified_as_external=st.booleans(),
)
durations = st.integers(min_value=-60, max_value=3600)
registries = st.sampled_from([frozenset({"alice-id"}), frozenset({"id-1", "kim@fabrikam.com"})])


def meeting(people: list[Participant], seconds: int) -> Meeting:
    return Meeting(ORGANIZER, tuple(people), START, START + timedelta(seconds=seconds))


class TestOrderAndDuplicates:
    """Participant order and repetition never change a decision."""

    @given(
        st.lists(participants, max_size=6),
        st.randoms(use_true_random=False),
        st.lists(st.integers(min_value=0, max_value=5), max_size=4),
        policy_settings,
        durations,
        registries,
    )
    @settings(max_examples=300)
    def test_invariant(
        self,
        people: list[Participant],
        rnd: object,
        repeat: list[int],
        cfg: PolicySettings,
        seconds: int,
        eci: frozenset[str],
    ) -> None:
        shuffled = list(people) + [people[i] for i in repeat if i < len(people)]
        rnd.shuffle(shuffled)  # type: ignore[attr-defined]
        first = decide(meeting(people, seconds), home_tenant_id=HOME, eci_users=eci, settings=cfg)
        again = decide(meeting(shuffled, seconds), home_tenant_id=HOME, eci_users=eci, settings=cfg)
        assert again == first


external_people = st.builds(
    Participant,
    display_name=names,
    directory_id=ids,
    attendance_email=st.builds(
        lambda loc, dom: f"{loc}@{dom}", locals_, st.sampled_from(EXTERNAL_DOMAINS)
    ),
) | st.builds(Participant, display_name=names, directory_id=ids, tenant_id=st.just("other-tenant"))


class TestAddingExternal:
    """Adding an external participant never makes an eligible meeting ineligible unless excluded."""

    @given(st.lists(participants, max_size=5), external_people, policy_settings, durations)
    @settings(max_examples=300)
    def test_monotone(
        self, people: list[Participant], new: Participant, cfg: PolicySettings, seconds: int
    ) -> None:
        assert classify(new, cfg.internal_domains, HOME) is Kind.EXTERNAL
        eci = frozenset({"alice-id"})
        before = decide(meeting(people, seconds), home_tenant_id=HOME, eci_users=eci, settings=cfg)
        after = decide(
            meeting([*people, new], seconds), home_tenant_id=HOME, eci_users=eci, settings=cfg
        )
        if before.eligible and not after.eligible:
            assert after.reason is Reason.EXCLUDED_PARTICIPANT
            assert excluded_entry(new, cfg.excluded) is not None


label_chars = st.characters(categories=["Ll", "Lu", "Nd"]) | st.sampled_from("-_")
labels = st.text(label_chars, min_size=1, max_size=20)


class TestLookAlikes:
    """A look-alike of an internal domain is never internal."""

    @given(st.sampled_from(["contoso.com", "bücher.example", "xn--bcher-kva.example"]), labels)
    def test_suffix_label(self, internal: str, suffix: str) -> None:
        self._assert_not_internal(f"{internal}.{suffix}")

    @given(st.sampled_from(["contoso.com", "bücher.example", "xn--bcher-kva.example"]), labels)
    def test_prefix_without_dot(self, internal: str, prefix: str) -> None:
        self._assert_not_internal(f"{prefix}{internal}")

    @staticmethod
    def _assert_not_internal(domain: str) -> None:
        participant = Participant(attendance_email=f"kim@{domain}")
        assert classify(participant, INTERNAL, HOME) is not Kind.INTERNAL


class TestIdnForms:
    """A Unicode domain and its punycode form are the same domain."""

    @given(st.text(st.characters(categories=["Ll", "Lo"]), min_size=1, max_size=15))
    def test_unicode_and_punycode_agree(self, label: str) -> None:
        unicode_form = normalise_domain(f"{label}.example")
        if unicode_form is not None:
            assert normalise_domain(unicode_form) == unicode_form
            assert unicode_form.isascii()
            assert normalise_domain(f" {label}.EXAMPLE. ") == unicode_form


class TestTotal:
    """The policy decides any meeting without raising."""

    @given(
        st.lists(
            st.builds(
                Participant,
                display_name=st.text(max_size=10),
                directory_id=st.none() | st.text(max_size=5),
                tenant_id=st.none() | st.text(max_size=5),
                attendance_email=st.none() | st.text(max_size=20),
                call_record_upn=st.none() | st.text(max_size=20),
                attendee_upn=st.none() | st.text(max_size=20),
                phone=st.none() | st.text(max_size=8),
            ),
            max_size=5,
        ),
        policy_settings,
    )
    def test_never_raises(self, people: list[Participant], cfg: PolicySettings) -> None:
        d = decide(meeting(people, 600), home_tenant_id=HOME, eci_users={"alice-id"}, settings=cfg)
        assert d.eligible is (d.reason in {Reason.EXTERNAL_PARTICIPANTS, Reason.SOLO_ECI_USER})
