"""Who took part: policy Participants built from Graph's callRecord, attendance report and meeting.

Sources are joined by directory id (reference/participants.md): the callRecord says who joined
and from which tenant, the attendance report adds their e-mail addresses, and the meeting's
attendee list adds a UPN for the same directory id. Invitations never add a participant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from policy import Decision, Participant, address_of, distinct_key
from workers.meeting import ResolvedParticipant

_ROLES = {"organizer": "organizer", "presenter": "presenter", "coorganizer": "presenter"}
VISITOR = "teamsvisitor:"  # the id prefix of anonymous visitors in callRecords
ANONYMOUS = "Anonymous visitor"  # their name in Salesforce: Graph gives none


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(name)
    return obj


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def from_identity(identity: Mapping[str, Any] | None, role: str = "attendee") -> Participant | None:
    """A participant from a communicationsIdentitySet; None when it names nobody."""
    if not isinstance(identity, Mapping):
        return None
    user = identity.get("user")
    if isinstance(user, Mapping) and str(user.get("id") or "").startswith(VISITOR):
        # An anonymous visitor: Graph shows them as a nameless `user` of no tenant.
        return Participant(
            display_name=_text(user.get("displayName")) or ANONYMOUS,
            directory_id=_text(user.get("id")),
            is_guest=True,
            role=role,
        )
    if isinstance(user, Mapping):
        upn = _text(user.get("userPrincipalName"))
        return Participant(
            display_name=_text(user.get("displayName")) or "",
            directory_id=_text(user.get("id")),
            tenant_id=_text(user.get("tenantId")),
            call_record_upn=upn,
            role=role,
        )
    phone = identity.get("phone")
    if isinstance(phone, Mapping):
        return Participant(
            display_name=_text(phone.get("displayName")) or "",
            phone=_text(phone.get("id")),
            role=role,
        )
    for key, value in identity.items():
        if key.startswith("@") or not isinstance(value, Mapping):
            continue
        # guest, acsUser, spoolUser, encrypted, application...: nobody with an address.
        return Participant(
            display_name=_text(value.get("displayName")) or "",
            directory_id=_text(value.get("id")),
            is_guest=True,
            role=role,
        )
    return None


def organizer(record: Mapping[str, Any]) -> Participant | None:
    """The callRecord's organizer (`organizer_v2`, expanded by default)."""
    return from_identity(_get(record, "organizer_v2", "identity"), role="organizer")


def from_call_record(record: Mapping[str, Any]) -> list[Participant]:
    """Every participant of `participants_v2` that names somebody."""
    people = []
    for entry in record.get("participants_v2") or []:
        person = from_identity(_get(entry, "identity"))
        if person is not None:
            people.append(person)
    return people


def _attendee(record: Mapping[str, Any]) -> Participant:
    identity = record.get("identity") if isinstance(record.get("identity"), Mapping) else {}
    assert isinstance(identity, Mapping)
    role = _ROLES.get(str(record.get("role") or "").lower(), "attendee")
    return Participant(
        display_name=_text(identity.get("displayName")) or "",
        directory_id=_text(identity.get("id")),
        tenant_id=_text(identity.get("tenantId")),
        attendance_email=_text(record.get("emailAddress")),
        role=role,
    )


def merge(
    organizer_: Participant,
    joined: Iterable[Participant],
    attendance: Mapping[str, Any] | None,
    meeting: Mapping[str, Any] | None,
) -> tuple[Participant, tuple[Participant, ...]]:
    """The organizer and the people who joined, with every address the sources give."""
    people: list[Participant] = []
    by_id: dict[str, int] = {}
    for person in (organizer_, *joined):  # one entry per directory id (devices, organizer)
        index = by_id.get(person.directory_id.lower()) if person.directory_id else None
        if index is None:
            if person.directory_id:
                by_id[person.directory_id.lower()] = len(people)
            people.append(person)
        else:
            people[index] = _fold(people[index], person)
    has_call_record = len(people) > 1
    names = {p.display_name.casefold() for p in people if p.display_name}
    for record in (attendance or {}).get("attendanceRecords") or []:
        if not isinstance(record, Mapping):
            continue
        found = _attendee(record)
        index = by_id.get((found.directory_id or "").lower()) if found.directory_id else None
        if index is not None:
            held = people[index]
            people[index] = dataclasses.replace(
                held,
                attendance_email=found.attendance_email or held.attendance_email,
                # callRecords call people of other tenants "External user"; the report knows.
                display_name=found.display_name or held.display_name,
                role=held.role if held.role == "organizer" else found.role,
            )
            continue
        if found.attendance_email is None and (has_call_record or found.display_name.casefold()
                                               in names):  # fmt: skip
            # A row without an address adds nothing the callRecord does not already say
            # (dial-ins and anonymous guests carry other ids in the two sources).
            continue
        people.append(found)
        if found.directory_id:
            by_id[found.directory_id.lower()] = len(people) - 1
    for info, is_organizer in _meeting_people(meeting):
        user_id = _text(_get(info, "identity", "user", "id"))
        upn = _text(info.get("upn"))
        index = 0 if is_organizer else by_id.get((user_id or "").lower()) if user_id else None
        if index is not None and upn:
            people[index] = dataclasses.replace(people[index], attendee_upn=upn)
    return people[0], tuple(people[1:])


def _fold(held: Participant, other: Participant) -> Participant:
    """`held` with the facts it lacks taken from `other` (same person, another source)."""
    missing = {
        f.name: getattr(other, f.name)
        for f in dataclasses.fields(held)
        if f.name not in ("role", "is_guest") and not getattr(held, f.name)
    }
    return dataclasses.replace(held, **missing)


def _meeting_people(meeting: Mapping[str, Any] | None) -> list[tuple[Mapping[str, Any], bool]]:
    parts = _get(meeting, "participants") or {}
    out: list[tuple[Mapping[str, Any], bool]] = []
    if isinstance(parts.get("organizer"), Mapping):
        out.append((parts["organizer"], True))
    out += [(a, False) for a in parts.get("attendees") or [] if isinstance(a, Mapping)]
    return out


def resolved(decision: Decision) -> tuple[ResolvedParticipant, ...]:
    """The decision's participants as the Salesforce stage receives them."""
    organizer_key = distinct_key(decision.organizer)
    out = []
    for kind, group in (
        ("internal", decision.internal),
        ("external", decision.external),
        ("unidentified", decision.unidentified),
    ):
        for person in group:
            key = distinct_key(person)
            address = address_of(person)
            role = "organizer" if key == organizer_key else _ROLES.get(person.role, "attendee")
            out.append(
                ResolvedParticipant(
                    key=f"{key[0]}:{key[1]}",
                    name=person.display_name or person.label(),
                    email=str(address) if address else None,
                    role=role,
                    kind=kind,
                    directory_id=person.directory_id,
                    phone=person.phone,
                )
            )
    return tuple(sorted(out, key=lambda p: (p.role != "organizer", p.key)))
