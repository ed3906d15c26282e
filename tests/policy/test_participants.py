"""Participant addresses, distinctness and classification."""

from __future__ import annotations

import pytest

from policy.models import Participant
from policy.participants import Kind, address_of, classify, distinct, distinct_key

HOME = "home-tenant"
INTERNAL = ("contoso.com", "xn--bcher-kva.example")


class TestAddress:
    """Attendance e-mail, else a non-#EXT# callRecord UPN, else the attendee UPN."""

    @pytest.mark.parametrize(
        ("participant", "expected"),
        [
            (
                Participant(
                    attendance_email="kim@fabrikam.com",
                    call_record_upn="kim@contoso.com",
                    attendee_upn="x@y.com",
                ),
                "kim@fabrikam.com",
            ),
            (
                Participant(call_record_upn="Alice@Contoso.com", attendee_upn="x@y.com"),
                "alice@contoso.com",
            ),
            (Participant(attendee_upn="bob@contoso.com"), "bob@contoso.com"),
            # Graph sends "" for unknown attendance e-mails.
            (
                Participant(attendance_email="", call_record_upn="bob@contoso.com"),
                "bob@contoso.com",
            ),
            (Participant(attendance_email="Kim", attendee_upn="kim@x.com"), "kim@x.com"),
            (
                Participant(
                    call_record_upn="kim_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                    attendee_upn="kim@fabrikam.com",
                ),
                "kim@fabrikam.com",
            ),
            (Participant(call_record_upn="kim_fabrikam.com#EXT#@contoso.onmicrosoft.com"), None),
            (Participant(phone="+14255550100"), None),
            (Participant(display_name="Visitor", is_guest=True), None),
        ],
    )
    def test_address(self, participant: Participant, expected: str | None) -> None:
        address = address_of(participant)
        assert (address.key if address else None) == expected


class TestDistinctness:
    """Participants are one per directory id, else address, else phone, else display name."""

    @pytest.mark.parametrize(
        ("a", "b", "same"),
        [
            (
                Participant(directory_id="ID-1"),
                Participant(directory_id="id-1", display_name="X"),
                True,
            ),
            (
                Participant(directory_id="id-1", call_record_upn="a@contoso.com"),
                Participant(directory_id="id-2", call_record_upn="a@contoso.com"),
                False,
            ),
            (
                Participant(attendance_email="Kim@Fabrikam.com"),
                Participant(call_record_upn="kim@FABRIKAM.com."),
                True,
            ),
            (Participant(phone="+1 425 555-0100"), Participant(phone="+14255550100"), True),
            (Participant(phone="+14255550100"), Participant(phone="+14255550101"), False),
            (
                Participant(display_name="Visitor", is_guest=True),
                Participant(display_name="  visitor ", is_guest=True),
                True,
            ),
            (
                Participant(display_name="Visitor", is_guest=True, directory_id="g-1"),
                Participant(display_name="Visitor", is_guest=True, directory_id="g-2"),
                False,
            ),
            (
                Participant(display_name="Kim", attendance_email="kim@fabrikam.com"),
                Participant(display_name="Kim"),
                False,
            ),
        ],
    )
    def test_key(self, a: Participant, b: Participant, same: bool) -> None:
        assert (distinct_key(a) == distinct_key(b)) is same
        assert len(distinct([a, b])) == (1 if same else 2)

    def test_keeps_the_most_informative_duplicate_whatever_the_order(self) -> None:
        thin = Participant(directory_id="id-1")
        rich = Participant(
            directory_id="id-1", tenant_id=HOME, attendance_email="a@contoso.com", display_name="A"
        )
        assert distinct([thin, rich]) == (rich,)
        assert distinct([rich, thin, thin]) == (rich,)


class TestClassify:
    """The domain decides when an address is known; else another tenant is external."""

    @pytest.mark.parametrize(
        ("participant", "kind"),
        [
            (Participant(call_record_upn="alice@contoso.com", tenant_id=HOME), Kind.INTERNAL),
            (Participant(call_record_upn="alice@CONTOSO.COM."), Kind.INTERNAL),
            (Participant(attendance_email="eu@sales.contoso.com"), Kind.INTERNAL),
            (Participant(attendance_email="kim@bücher.example"), Kind.INTERNAL),
            (Participant(attendance_email="kim@BÜCHER.example"), Kind.INTERNAL),
            (Participant(attendance_email="kim@xn--bcher-kva.example"), Kind.INTERNAL),
            (Participant(attendance_email="eve@contoso.com.evil.io"), Kind.EXTERNAL),
            (Participant(attendance_email="eve@notcontoso.com"), Kind.EXTERNAL),
            (Participant(attendance_email="eve@contoso.co"), Kind.EXTERNAL),
            (Participant(attendance_email="eve@c\u043entoso.com"), Kind.EXTERNAL),
            (Participant(attendance_email="carol@fabrikam.com", tenant_id=HOME), Kind.EXTERNAL),
            # A B2B guest of the home tenant with a customer's address is external.
            (
                Participant(
                    tenant_id=HOME,
                    call_record_upn="kim_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                    attendance_email="kim@fabrikam.com",
                ),
                Kind.EXTERNAL,
            ),
            # A B2B guest whose only identity is the #EXT# UPN in the home tenant: unknown.
            (
                Participant(
                    tenant_id=HOME, call_record_upn="kim_fabrikam.com#EXT#@contoso.onmicrosoft.com"
                ),
                Kind.UNIDENTIFIED,
            ),
            # An internal address wins over another tenant id.
            (Participant(call_record_upn="alice@contoso.com", tenant_id="other"), Kind.INTERNAL),
            (Participant(display_name="External user", tenant_id="other"), Kind.EXTERNAL),
            (Participant(display_name="External user", tenant_id="HOME-TENANT"), Kind.UNIDENTIFIED),
            (Participant(display_name="Alice", tenant_id=HOME), Kind.UNIDENTIFIED),
            (Participant(display_name="Alice", tenant_id=""), Kind.UNIDENTIFIED),
            (Participant(phone="+14255550100"), Kind.UNIDENTIFIED),
            (Participant(display_name="Visitor", is_guest=True), Kind.UNIDENTIFIED),
            (Participant(attendance_email="not-an-address"), Kind.UNIDENTIFIED),
        ],
    )
    def test_kind(self, participant: Participant, kind: Kind) -> None:
        assert classify(participant, INTERNAL, HOME) is kind

    def test_no_internal_domains_makes_every_address_external(self) -> None:
        assert classify(Participant(call_record_upn="a@contoso.com"), (), HOME) is Kind.EXTERNAL
