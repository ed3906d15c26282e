"""Pure eligibility policy (§4): frozen facts about a meeting in, a decision with its reason out.

No I/O, no clock, no environment; this package imports nothing from the rest of the product.
"""

from policy.config import (
    PolicyConfigError,
    PolicySettings,
    parse_domain_list,
    parse_toml,
    with_internal_domains,
)
from policy.domains import Address, normalise_domain, parse_address
from policy.models import Decision, Meeting, Participant, Reason
from policy.participants import Kind, address_of, classify, distinct, distinct_key
from policy.rules import decide

__all__ = [
    "Address",
    "Decision",
    "Kind",
    "Meeting",
    "Participant",
    "PolicyConfigError",
    "PolicySettings",
    "Reason",
    "address_of",
    "classify",
    "decide",
    "distinct",
    "distinct_key",
    "normalise_domain",
    "parse_address",
    "parse_domain_list",
    "parse_toml",
    "with_internal_domains",
]
