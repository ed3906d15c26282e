"""Domain and address normalisation and matching."""

from __future__ import annotations

import pytest

from policy.domains import Address, is_within, lineage, normalise_domain, parse_address


class TestNormaliseDomain:
    """A domain has one canonical form: ASCII A-labels, lower case, no trailing dot."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("contoso.com", "contoso.com"),
            ("CONTOSO.Com", "contoso.com"),
            ("contoso.com.", "contoso.com"),
            ("  contoso.com  ", "contoso.com"),
            ("sales.eu.contoso.com", "sales.eu.contoso.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.EXAMPLE.", "xn--bcher-kva.example"),
            ("bücher.example.", "xn--bcher-kva.example"),
            ("contoso\u3002com", "contoso.com"),  # ideographic full stop
            ("\uff43\uff4f\uff4e\uff54\uff4f\uff53\uff4f.com", "contoso.com"),  # full width
            ("localhost", "localhost"),
            ("mail_host.contoso.com", "mail_host.contoso.com"),
        ],
    )
    def test_canonical(self, text: str, expected: str) -> None:
        assert normalise_domain(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "   ",
            ".",
            "a..b",
            ".contoso.com",
            "contoso.com..",
            "-contoso.com",
            "contoso-.com",
            "con toso.com",
            "contoso.com/evil",
            "[192.0.2.1]",
            "xn--zzzz.com",  # not valid punycode
            "\U0001f600.com",  # disallowed in IDNA 2008
            "a" * 64 + ".com",
            ".".join(["a" * 63] * 5),  # over 253 characters
            "contoso.com\x00",
        ],
    )
    def test_malformed_is_none(self, text: str) -> None:
        assert normalise_domain(text) is None

    def test_cyrillic_homoglyph_is_another_domain(self) -> None:
        assert normalise_domain("c\u043entoso.com") not in (None, "contoso.com")


class TestParseAddress:
    """An address is a local part and a well-formed domain; #EXT# UPNs are not addresses."""

    @pytest.mark.parametrize(
        ("text", "local", "domain"),
        [
            ("carol@fabrikam.com", "carol", "fabrikam.com"),
            ("  Carol.Diaz@Fabrikam.COM. ", "Carol.Diaz", "fabrikam.com"),
            ("kim@bücher.example", "kim", "xn--bcher-kva.example"),
            ('"odd@local"@contoso.com', '"odd@local"', "contoso.com"),
        ],
    )
    def test_parses(self, text: str, local: str, domain: str) -> None:
        assert parse_address(text) == Address(local, domain)

    @pytest.mark.parametrize(
        "text",
        [
            None,
            "",
            "   ",
            "Kim",
            "@contoso.com",
            "kim@",
            "kim@@",
            "kim@contoso..com",
            "Kim Lee <kim@contoso.com>",
            "kim lee@contoso.com",
            "kim_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "kim_fabrikam.com#ext#@contoso.onmicrosoft.com",
        ],
    )
    def test_rejects(self, text: str | None) -> None:
        assert parse_address(text) is None

    def test_key_lowercases_local_part(self) -> None:
        address = parse_address("Carol.Diaz@FABRIKAM.com")
        assert address is not None
        assert address.key == "carol.diaz@fabrikam.com"
        assert str(address) == "Carol.Diaz@fabrikam.com"


class TestMatching:
    """A domain is within a parent when equal to it or a dot-separated subdomain of it."""

    @pytest.mark.parametrize(
        ("domain", "parent", "within"),
        [
            ("contoso.com", "contoso.com", True),
            ("sales.contoso.com", "contoso.com", True),
            ("a.b.contoso.com", "contoso.com", True),
            ("notcontoso.com", "contoso.com", False),
            ("contoso.com.evil.io", "contoso.com", False),
            ("contoso.co", "contoso.com", False),
            ("com", "contoso.com", False),
        ],
    )
    def test_is_within(self, domain: str, parent: str, within: bool) -> None:
        assert is_within(domain, parent) is within

    def test_lineage_walks_up_to_the_top_label(self) -> None:
        assert list(lineage("a.b.rival.com")) == [
            "a.b.rival.com",
            "b.rival.com",
            "rival.com",
            "com",
        ]
