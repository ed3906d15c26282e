"""The eligibility rules of §4, applied in order; the first that fires gives the reason."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

from policy.config import PolicySettings
from policy.domains import lineage, parse_address
from policy.models import ELIGIBLE_REASONS, Decision, Meeting, Participant, Reason
from policy.participants import (
    Kind,
    address_of,
    classify,
    distinct,
    distinct_key,
    known_identifiers,
)


def decide(
    meeting: Meeting,
    *,
    home_tenant_id: str,
    eci_users: Collection[str],
    settings: PolicySettings,
) -> Decision:
    """Whether the meeting's transcript may go to Salesforce, and why.

    `eci_users` is the ECI user registry: directory ids and/or addresses, in any case. The
    organizer is added to the participants when the caller left it out.
    """
    people = distinct((meeting.organizer, *meeting.participants))
    kinds = {
        distinct_key(p): classify(p, settings.internal_domains, home_tenant_id) for p in people
    }

    def of(kind: Kind) -> tuple[Participant, ...]:
        return tuple(p for p in people if kinds[distinct_key(p)] is kind)

    external, unidentified = of(Kind.EXTERNAL), of(Kind.UNIDENTIFIED)
    counted = settings.count_unidentified_as_external and bool(unidentified)
    facts = Decision(
        eligible=False,
        reason=Reason.NO_EXTERNAL_PARTICIPANTS,
        organizer=meeting.organizer,
        internal=of(Kind.INTERNAL),
        external=external,
        unidentified=unidentified,
        duration_seconds=meeting.duration_seconds,
    )

    def decision(
        reason: Reason, excluded: Participant | None = None, entry: str | None = None
    ) -> Decision:
        return replace(
            facts,
            eligible=reason in ELIGIBLE_REASONS,
            reason=reason,
            excluded_participant=excluded,
            excluded_by=entry,
            unidentified_counted_as_external=reason is Reason.EXTERNAL_PARTICIPANTS and counted,
        )

    if meeting.duration_seconds < settings.min_duration_seconds:
        return decision(Reason.TOO_SHORT)
    if not _is_eci_user(meeting.organizer, people, eci_users):
        return decision(Reason.RECORDER_NOT_ECI_USER)
    for participant in people:
        entry = excluded_entry(participant, settings.excluded)
        if entry is not None:
            return decision(Reason.EXCLUDED_PARTICIPANT, participant, entry)
    if external or counted:
        return decision(Reason.EXTERNAL_PARTICIPANTS)
    if len(people) == 1:
        return decision(Reason.SOLO_ECI_USER)
    return decision(Reason.NO_EXTERNAL_PARTICIPANTS)


def excluded_entry(participant: Participant, excluded: Iterable[str]) -> str | None:
    """The `excluded` entry matching the participant's address, its domain or a parent domain."""
    address = address_of(participant)
    if address is None:
        return None
    entries = set(excluded)
    if address.key in entries:
        return address.key
    return next((d for d in lineage(address.domain) if d in entries), None)


def _is_eci_user(
    organizer: Participant, people: Iterable[Participant], eci_users: Collection[str]
) -> bool:
    # The organizer's own record in the list may carry identifiers the argument lacks.
    key = distinct_key(organizer)
    identifiers = set(known_identifiers(organizer))
    for participant in people:
        if distinct_key(participant) == key:
            identifiers |= known_identifiers(participant)
    return bool(identifiers & registry_keys(eci_users))


def registry_keys(eci_users: Iterable[str]) -> frozenset[str]:
    """Registry entries as `known_identifiers` yields them: lower-case ids and addresses."""
    keys: set[str] = set()
    for entry in eci_users:
        if "@" in entry:
            address = parse_address(entry)
            if address is not None:
                keys.add(address.key)
        elif entry.strip():
            keys.add(entry.strip().lower())
    return frozenset(keys)
