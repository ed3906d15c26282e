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


TRACKER_NAME_LIMIT = 80  # Teams_Meeting_Mention__c.Tracker__c
PHRASE_LIMIT = 255  # Teams_Meeting_Mention__c.Phrase__c


def _trackers(value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`[trackers]` as ((name, phrases), ...): names and phrases non-empty and short enough for
    their Salesforce fields, phrases without duplicates (ignoring case)."""
    items = value.items() if isinstance(value, Mapping) else value
    if isinstance(items, str) or not isinstance(items, Iterable):
        raise PolicyConfigError("trackers", "expected a table of name = [words or phrases]")
    out: list[tuple[str, tuple[str, ...]]] = []
    for entry in items:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise PolicyConfigError("trackers", "expected a table of name = [words or phrases]")
        name, phrases = entry
        key = f"trackers.{name}"
        if not isinstance(name, str) or not name.strip() or len(name) > TRACKER_NAME_LIMIT:
            raise PolicyConfigError(key, f"a name of 1 to {TRACKER_NAME_LIMIT} characters")
        if isinstance(phrases, str) or not isinstance(phrases, Iterable):
            raise PolicyConfigError(key, "expected a list of words or phrases")
        kept: dict[str, str] = {}
        for i, phrase in enumerate(phrases):
            if not isinstance(phrase, str) or not phrase.split():
                raise PolicyConfigError(f"{key}[{i}]", "expected a non-empty word or phrase")
            if len(phrase) > PHRASE_LIMIT:
                raise PolicyConfigError(f"{key}[{i}]", f"longer than {PHRASE_LIMIT} characters")
            kept.setdefault(" ".join(phrase.split()).casefold(), " ".join(phrase.split()))
        out.append((name.strip(), tuple(kept.values())))
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
    # `[trackers]`: name -> words or phrases whose mentions are written to Salesforce (§6);
    # held as ((name, (phrase, ...)), ...) in the file's order.
    trackers: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        # Normalising here means settings built directly (tests, the demo) obey the same rules.
        internal = _entries("internal_domains", self.internal_domains, _domain_entry)
        excluded = _entries("excluded", self.excluded, _excluded_entry)
        object.__setattr__(self, "internal_domains", internal)
        object.__setattr__(self, "excluded", excluded)
        object.__setattr__(self, "trackers", _trackers(self.trackers))
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
    trackers = data.pop("trackers", None)
    if set(data) == {"policy"} and isinstance(data["policy"], dict):
        data = data["policy"]
    if trackers is not None:
        data = {**data, "trackers": trackers}
    return PolicySettings.from_mapping(data)


def with_internal_domains(settings: PolicySettings, domains: Iterable[str]) -> PolicySettings:
    """A copy of `settings` whose internal domains are `domains` (the env or tenant list)."""
    return dataclasses.replace(settings, internal_domains=tuple(domains))


def parse_domain_list(text: str) -> tuple[str, ...]:
    """The domains in a comma-separated list such as `INTERNAL_DOMAINS`; blanks are ignored."""
    items = (item.strip() for item in text.split(","))
    return _entries("INTERNAL_DOMAINS", [item for item in items if item], _domain_entry)
