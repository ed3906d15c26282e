"""Policy settings from TOML and mappings."""

from __future__ import annotations

from typing import Any

import pytest

from policy.config import (
    PolicyConfigError,
    PolicySettings,
    parse_domain_list,
    parse_toml,
    with_internal_domains,
)


class TestDefaults:
    """Every setting is optional and the defaults are those of §4."""

    def test_empty_file(self) -> None:
        settings = parse_toml("")
        assert settings == PolicySettings()
        assert settings.internal_domains == ()
        assert settings.excluded == ()
        assert settings.min_duration_seconds == 60
        assert settings.count_unidentified_as_external is False


class TestParseToml:
    """Valid TOML becomes settings in canonical form, top level or in one [policy] table."""

    def test_all_keys(self) -> None:
        settings = parse_toml(
            'internal_domains = ["Contoso.com.", "bücher.example"]\n'
            'excluded = ["rival.com", "Boss@Partner.COM"]\n'
            "min_duration_seconds = 120\n"
            "count_unidentified_as_external = true\n"
        )
        assert settings.internal_domains == ("contoso.com", "xn--bcher-kva.example")
        assert settings.excluded == ("rival.com", "boss@partner.com")
        assert settings.min_duration_seconds == 120
        assert settings.count_unidentified_as_external is True

    def test_policy_table(self) -> None:
        settings = parse_toml('[policy]\ninternal_domains = ["contoso.com"]\n')
        assert settings.internal_domains == ("contoso.com",)

    def test_duplicates_collapse_in_order(self) -> None:
        settings = parse_toml('internal_domains = ["b.com", "a.com", "B.COM."]')
        assert settings.internal_domains == ("b.com", "a.com")

    def test_zero_minimum_is_allowed(self) -> None:
        assert parse_toml("min_duration_seconds = 0").min_duration_seconds == 0


class TestErrors:
    """Every malformed setting raises PolicyConfigError naming the key."""

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ("internal_domain = []", "internal_domain"),
            ("zeta = 1\nalpha = 2", "alpha, zeta"),
            ('internal_domains = "contoso.com"', "internal_domains"),
            ("internal_domains = [1]", "internal_domains[0]"),
            ('internal_domains = ["ok.com", "bad..com"]', "internal_domains[1]"),
            ('internal_domains = ["alice@contoso.com"]', "internal_domains[0]"),
            ('internal_domains = [".contoso.com"]', "internal_domains[0]"),
            ('excluded = ["rival.com", "@rival.com"]', "excluded[1]"),
            ('excluded = ["x y@rival.com"]', "excluded[0]"),
            ('excluded = ["#EXT#@host.onmicrosoft.com"]', "excluded[0]"),
            ("excluded = [true]", "excluded[0]"),
            ("min_duration_seconds = -1", "min_duration_seconds"),
            ("min_duration_seconds = 1.5", "min_duration_seconds"),
            ("min_duration_seconds = true", "min_duration_seconds"),
            ('min_duration_seconds = "60"', "min_duration_seconds"),
            ('count_unidentified_as_external = "yes"', "count_unidentified_as_external"),
            ("count_unidentified_as_external = 1", "count_unidentified_as_external"),
            ("internal_domains = [", "POLICY_FILE"),
        ],
    )
    def test_names_the_key(self, text: str, key: str) -> None:
        with pytest.raises(PolicyConfigError) as caught:
            parse_toml(text)
        assert caught.value.key == key
        assert str(caught.value).startswith(f"{key}: ")

    def test_from_mapping_rejects_unknown(self) -> None:
        data: dict[str, Any] = {"min_duration_seconds": 5, "exclude": ["x.com"]}
        with pytest.raises(PolicyConfigError, match=r"^exclude: unknown"):
            PolicySettings.from_mapping(data)

    def test_is_a_value_error(self) -> None:
        assert issubclass(PolicyConfigError, ValueError)


class TestInternalDomainsOverride:
    """The caller replaces internal domains (env or tenant list) and they are validated too."""

    def test_replaces_and_keeps_the_rest(self) -> None:
        base = PolicySettings(internal_domains=("old.com",), excluded=("rival.com",))
        settings = with_internal_domains(base, ["Contoso.com", "fabrikam.com."])
        assert settings.internal_domains == ("contoso.com", "fabrikam.com")
        assert settings.excluded == ("rival.com",)
        assert base.internal_domains == ("old.com",)

    def test_rejects_malformed(self) -> None:
        with pytest.raises(PolicyConfigError, match=r"internal_domains\[0\]"):
            with_internal_domains(PolicySettings(), ["not a domain"])

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("contoso.com", ("contoso.com",)),
            (" contoso.com , Fabrikam.com ,, ", ("contoso.com", "fabrikam.com")),
            ("", ()),
        ],
    )
    def test_parse_domain_list(self, text: str, expected: tuple[str, ...]) -> None:
        assert parse_domain_list(text) == expected

    def test_parse_domain_list_names_the_variable(self) -> None:
        with pytest.raises(PolicyConfigError, match=r"^INTERNAL_DOMAINS\[1\]"):
            parse_domain_list("contoso.com,bad..com")
