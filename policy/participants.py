"""Participants: their address (§4), their distinctness key, and internal/external/unidentified."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from policy.domains import Address, is_within, parse_address
from policy.models import Participant

_PHONE_NOISE = re.compile(r"[\s().\-/]")


class Kind(StrEnum):
    """Where a participant stands relative to the home organisation."""

    INTERNAL = "internal"
    EXTERNAL = "external"
    UNIDENTIFIED = "unidentified"


def address_of(participant: Participant) -> Address | None:
    """The best address of the person who joined.

    The attendance report's e-mail, else the callRecord UPN, else the onlineMeeting attendee
    UPN of the same directory id. Empty, malformed and B2B `#EXT#` values are skipped, so a
    guest's host-tenant UPN never passes for the guest's own address.
    """
    for candidate in (
        participant.attendance_email,
        participant.call_record_upn,
        participant.attendee_upn,
    ):
        address = parse_address(candidate)
        if address is not None:
            return address
    return None


def known_identifiers(participant: Participant) -> frozenset[str]:
    """Every lower-cased directory id and address by which a registry may know the person."""
    directory_id = _clean(participant.directory_id)
    ids = {directory_id.lower()} if directory_id else set()
    for candidate in (
        participant.attendance_email,
        participant.call_record_upn,
        participant.attendee_upn,
    ):
        address = parse_address(candidate)
        if address is not None:
            ids.add(address.key)
    return frozenset(ids)


def distinct_key(participant: Participant) -> tuple[str, str]:
    """Directory id, else lower-cased address, else phone number, else display name."""
    directory_id = _clean(participant.directory_id)
    if directory_id:
        return ("id", directory_id.lower())
    address = address_of(participant)
    if address is not None:
        return ("address", address.key)
    phone = _clean(participant.phone)
    if phone:
        return ("phone", _PHONE_NOISE.sub("", phone).lower())
    return ("name", " ".join(participant.display_name.split()).casefold())


def _richness(participant: Participant) -> tuple[int, str]:
    """Orders duplicates: most facts first, then a stable tie-break independent of input order."""
    facts = (
        participant.directory_id,
        participant.tenant_id,
        participant.attendance_email,
        participant.call_record_upn,
        participant.attendee_upn,
        participant.phone,
        participant.display_name,
    )
    return (sum(1 for f in facts if _clean(f)), repr(participant))


def distinct(participants: Iterable[Participant]) -> tuple[Participant, ...]:
    """One participant per distinctness key, the most informative of each group, sorted by key.

    The result depends only on the set of participants given, never on their order or
    repetition.
    """
    best: dict[tuple[str, str], Participant] = {}
    for participant in participants:
        key = distinct_key(participant)
        held = best.get(key)
        if held is None or _richness(participant) > _richness(held):
            best[key] = participant
    return tuple(best[key] for key in sorted(best))


def classify(
    participant: Participant, internal_domains: Iterable[str], home_tenant_id: str
) -> Kind:
    """Internal or external by the address's domain when known, else by tenant, else unknown."""
    address = address_of(participant)
    if address is not None:
        if any(is_within(address.domain, parent) for parent in internal_domains):
            return Kind.INTERNAL
        return Kind.EXTERNAL
    tenant = _clean(participant.tenant_id)
    if tenant and tenant.lower() != home_tenant_id.strip().lower():
        return Kind.EXTERNAL
    return Kind.UNIDENTIFIED


def _clean(value: str | None) -> str | None:
    """The stripped value, or None when absent or blank (Graph sends "" for unknown)."""
    if value is None:
        return None
    return value.strip() or None
