"""Policy settings (§4): validated from a parsed TOML table, with clear errors naming the key.

Reading `POLICY_FILE` and the `INTERNAL_DOMAINS` override happen at the edge; this module only
turns text and mappings into a `PolicySettings`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policy.domains import normalise_domain, parse_address

DEFAULT_MIN_DURATION_SECONDS = 60


class PolicyConfigError(ValueError):
    """A policy setting is malformed; `key` names it (e.g. `excluded[2]`)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


def _domain_entry(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise PolicyConfigError(key, f"expected a domain string, got {type(value).__name__}")
    if "@" in value:
        raise PolicyConfigError(key, f"expected a domain, got an address {value!r}")
    domain = normalise_domain(value)
    if domain is None:
        raise PolicyConfigError(key, f"malformed domain {value!r}")
    return domain


def _excluded_entry(key: str, value: object) -> str:
    if isinstance(value, str) and "@" in value:
        address = parse_address(value)
        if address is None:
            raise PolicyConfigError(key, f"malformed address {value!r}")
        return address.key
    return _domain_entry(key, value)


def _entries(key: str, values: object, parse: Callable[[str, object], str]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise PolicyConfigError(key, "expected a list of strings")
    out: dict[str, None] = {}  # ordered and without duplicates
    for i, value in enumerate(values):
        out[parse(f"{key}[{i}]", value)] = None
    return tuple(out)


@dataclass(frozen=True)
class PolicySettings:
    """The policy's settings, held in canonical form (domains as lower-case ASCII).

    `excluded` holds addresses (lower-cased, `local@domain`) and domains; a domain also
    excludes its subdomains.
    """

    internal_domains: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    min_duration_seconds: int = DEFAULT_MIN_DURATION_SECONDS
    count_unidentified_as_external: bool = False

    def __post_init__(self) -> None:
        # Normalising here means settings built directly (tests, the demo) obey the same rules.
        internal = _entries("internal_domains", self.internal_domains, _domain_entry)
        excluded = _entries("excluded", self.excluded, _excluded_entry)
        object.__setattr__(self, "internal_domains", internal)
        object.__setattr__(self, "excluded", excluded)
        minimum = self.min_duration_seconds
        if isinstance(minimum, bool) or not isinstance(minimum, int):
            raise PolicyConfigError("min_duration_seconds", "expected an integer")
        if minimum < 0:
            raise PolicyConfigError("min_duration_seconds", "must be 0 or more")
        if not isinstance(self.count_unidentified_as_external, bool):
            raise PolicyConfigError("count_unidentified_as_external", "expected true or false")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PolicySettings:
        """Settings from a parsed table; every key is optional, unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyConfigError(", ".join(unknown), "unknown policy setting")
        return cls(**dict(data))


def parse_toml(text: str) -> PolicySettings:
    """Settings from TOML text: keys at the top level, or all inside one `[policy]` table."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyConfigError("POLICY_FILE", f"not valid TOML: {exc}") from exc
    if set(data) == {"policy"} and isinstance(data["policy"], dict):
        data = data["policy"]
    return PolicySettings.from_mapping(data)


def with_internal_domains(settings: PolicySettings, domains: Iterable[str]) -> PolicySettings:
    """A copy of `settings` whose internal domains are `domains` (the env or tenant list)."""
    return dataclasses.replace(settings, internal_domains=tuple(domains))


def parse_domain_list(text: str) -> tuple[str, ...]:
    """The domains in a comma-separated list such as `INTERNAL_DOMAINS`; blanks are ignored."""
    items = (item.strip() for item in text.split(","))
    return _entries("INTERNAL_DOMAINS", [item for item in items if item], _domain_entry)
