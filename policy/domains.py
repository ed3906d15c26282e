"""Domain and address normalisation, and the matching rules built on them.

A domain is compared in one canonical form: ASCII (IDNA A-labels), lower case, no trailing
dot. "bücher.example", "BÜCHER.example." and "xn--bcher-kva.example" are the same domain.
Anything that cannot be put in that form is malformed and matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import idna

_MAX_DOMAIN = 253
# LDH labels; the underscore is tolerated because some mail hosts use it.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_LOCAL_FORBIDDEN = re.compile(r"[\s<>,;\x00-\x1f\x7f]")
# A B2B guest's UPN (`alias_domain#EXT#@host.onmicrosoft.com`) names the host, not the person.
_B2B_MARK = "#ext#"


def normalise_domain(text: str) -> str | None:
    """The canonical form of a domain, or None when it is malformed."""
    domain = text.strip()
    if not domain:
        return None
    if not domain.isascii():
        try:
            # UTS 46 maps case, width and the ideographic full stops before encoding.
            mapped = idna.uts46_remap(domain, std3_rules=False, transitional=False)
            mapped = mapped[:-1] if mapped.endswith(".") else mapped
            domain = idna.encode(mapped).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    domain = domain.lower()
    domain = domain[:-1] if domain.endswith(".") else domain
    if not domain or len(domain) > _MAX_DOMAIN:
        return None
    for label in domain.split("."):
        if not _LABEL.fullmatch(label):
            return None
        if label.startswith("xn--") and not _valid_a_label(label):
            return None
    return domain


def _valid_a_label(label: str) -> bool:
    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Address:
    """An e-mail address: the local part as given and the domain in canonical form."""

    local: str
    domain: str

    @property
    def key(self) -> str:
        """The lower-cased address, the form used for distinctness and look-ups."""
        return f"{self.local.lower()}@{self.domain}"

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def parse_address(text: str | None) -> Address | None:
    """The address in `text`, or None when it is empty, malformed or a B2B `#EXT#` UPN."""
    if text is None:
        return None
    text = text.strip()
    if _B2B_MARK in text.lower() or "@" not in text:
        return None
    local, _, domain_text = text.rpartition("@")
    if not local or _LOCAL_FORBIDDEN.search(local):
        return None
    domain = normalise_domain(domain_text)
    if domain is None:
        return None
    return Address(local, domain)


def is_within(domain: str, parent: str) -> bool:
    """Whether canonical `domain` equals canonical `parent` or is a subdomain of it."""
    return domain == parent or domain.endswith("." + parent)


def lineage(domain: str) -> Iterator[str]:
    """The canonical domain itself, then each parent domain: a.b.c, b.c, c."""
    labels = domain.split(".")
    for i in range(len(labels)):
        yield ".".join(labels[i:])
