"""The scenario file of DESIGN §7 (the emulated tenant), parsed and validated.

Every validation error names the field it is about, as a path from the document's root:
`ScenarioError("meetings[2].participants[1]: needs one of upn, email, phone, guest")`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

DEFAULT_PATH = Path(__file__).parent / "scenarios" / "default.json"

ParticipantKind = Literal["user", "external", "phone", "guest"]

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([^.\s@/]{1,63}\.)+[^.\s@/]{1,63}\.?$")
_POLICY_KEYS = {
    "internal_domains": "list",
    "excluded": "list",
    "min_duration_seconds": "number",
    "count_unidentified_as_external": "bool",
    "trackers": "table",  # tracker name -> words or phrases (DESIGN §4 `[trackers]`)
}


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message starts with the offending field's path."""


# The application permissions DESIGN §6 names: what an admin consents to by default.
APP_PERMISSIONS = (
    "CallRecords.Read.All",
    "OnlineMeetings.Read.All",
    "OnlineMeetingArtifact.Read.All",
    "OnlineMeetingTranscript.Read.All",
    "User.Read.All",
    "Organization.Read.All",
)
GLOBAL = "global"  # a Teams application access policy granted with `-Global`


@dataclass(frozen=True)
class Tenant:
    id: str
    domains: tuple[str, ...]
    app_permissions: tuple[str, ...] = APP_PERMISSIONS  # the consented application roles
    access_policy: str | tuple[str, ...] = GLOBAL  # "global" or the UPNs it is granted to


@dataclass(frozen=True)
class User:
    id: str
    upn: str
    name: str
    eci: bool


@dataclass(frozen=True)
class Participant:
    """One person who joined: a tenant user, someone external, a phone dial-in or a guest."""

    kind: ParticipantKind
    upn: str | None = None  # tenant users: the user's UPN as `users` spells it
    email: str | None = None  # external people
    name: str | None = None  # tenant users: their name; external: as given (optional)
    tenant: str | None = None  # external: the tenant they sign in with (None: their own)
    phone: str | None = None  # E.164
    guest: str | None = None  # anonymous guest's display name


@dataclass(frozen=True)
class Meeting:
    """A meeting; `participants` always holds the organizer (first when not listed)."""

    id: str
    subject: str
    organizer: str  # the organizer's UPN as `users` spells it
    start: dt.datetime
    end: dt.datetime
    participants: tuple[Participant, ...]
    transcripts: tuple[str, ...]  # WebVTT texts in the order made (none: no transcription)
    transcript_ready_after_s: float
    recording: bool
    callrecord_after_s: float = 0.0  # the callRecord exists (and is notified) this long after play
    attendance_report: bool = True  # false: the organizer turned attendance reports off
    allow_recording: bool = True  # false: recording was turned off in the meeting's options
    # A recurring series' name: meetings sharing it (and their organizer) are occurrences of
    # one online meeting, with one meeting id, join link and thread.
    series: str | None = None

    @property
    def transcript(self) -> str | None:
        """The first transcript's text (None without transcription)."""
        return self.transcripts[0] if self.transcripts else None


@dataclass(frozen=True)
class Scenario:
    tenant: Tenant
    policy: dict[str, Any]
    users: tuple[User, ...]
    salesforce: dict[str, list[dict[str, Any]]]
    meetings: tuple[Meeting, ...]


def load(path: Path | None = None) -> Scenario:
    """Read and validate a scenario file (None: the built-in one)."""
    path = path or DEFAULT_PATH
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not JSON ({exc})") from None
    return parse(doc)


def parse(doc: object) -> Scenario:
    """Validate a decoded scenario document; ScenarioError names the first bad field."""
    root = _obj(doc, "scenario", required={"tenant", "users", "meetings"},
                optional={"policy", "salesforce"})  # fmt: skip
    tenant = _tenant(root["tenant"])
    users = _users(root["users"], tenant)
    _policy_users(tenant, users)
    by_upn = {u.upn.lower(): u for u in users}
    meetings = _list(root["meetings"], "meetings")
    parsed = tuple(_meeting(m, f"meetings[{i}]", by_upn) for i, m in enumerate(meetings))
    seen: dict[str, int] = {}
    for i, m in enumerate(parsed):
        if m.id in seen:
            raise ScenarioError(f"meetings[{i}].id: {m.id!r} repeats meetings[{seen[m.id]}].id")
        seen[m.id] = i
    _series(parsed)
    return Scenario(
        tenant=tenant,
        policy=_policy(root.get("policy", {})),
        users=users,
        salesforce=_salesforce(root.get("salesforce", {})),
        meetings=parsed,
    )


def _series(meetings: tuple[Meeting, ...]) -> None:
    """One series is one online meeting, and an online meeting has one organizer."""
    first: dict[str, int] = {}
    for i, m in enumerate(meetings):
        if m.series is None:
            continue
        j = first.setdefault(m.series, i)
        if meetings[j].organizer.lower() != m.organizer.lower():
            raise ScenarioError(
                f"meetings[{i}].series: {m.series!r} is organized by {meetings[j].organizer} "
                f"(meetings[{j}]); every occurrence of a series has the same organizer"
            )


# -- sections ------------------------------------------------------------------------------
def _tenant(value: object) -> Tenant:
    t = _obj(value, "tenant", required={"id", "domains"},
             optional={"app_permissions", "access_policy"})  # fmt: skip
    domains = _list(t["domains"], "tenant.domains")
    if not domains:
        raise ScenarioError("tenant.domains: needs at least one domain")
    roles: tuple[str, ...] = APP_PERMISSIONS
    if "app_permissions" in t:
        listed = _list(t["app_permissions"], "tenant.app_permissions")
        roles = tuple(_text(r, f"tenant.app_permissions[{i}]") for i, r in enumerate(listed))
    policy: str | tuple[str, ...] = GLOBAL
    if "access_policy" in t and t["access_policy"] != GLOBAL:
        if not isinstance(t["access_policy"], list):
            raise ScenarioError('tenant.access_policy: must be "global" or a list of UPNs')
        policy = tuple(
            _address(u, f"tenant.access_policy[{i}]") for i, u in enumerate(t["access_policy"])
        )
    return Tenant(
        id=_guid(t["id"], "tenant.id"),
        domains=tuple(_domain(d, f"tenant.domains[{i}]") for i, d in enumerate(domains)),
        app_permissions=roles,
        access_policy=policy,
    )


def _policy_users(tenant: Tenant, users: tuple[User, ...]) -> None:
    """The access policy is granted to tenant users: an unknown UPN is a typo."""
    if isinstance(tenant.access_policy, str):
        return
    known = {u.upn.lower() for u in users}
    for i, upn in enumerate(tenant.access_policy):
        if upn.lower() not in known:
            raise ScenarioError(f"tenant.access_policy[{i}]: {upn!r} is not one of users")


def _users(value: object, tenant: Tenant) -> tuple[User, ...]:
    items = _list(value, "users")
    if not items:
        raise ScenarioError("users: needs at least one user (meetings need an organizer)")
    out: list[User] = []
    ids: dict[str, int] = {}
    upns: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"users[{i}]"
        u = _obj(item, path, required={"id", "upn", "name"}, optional={"eci"})
        user = User(
            id=_guid(u["id"], f"{path}.id"),
            upn=_address(u["upn"], f"{path}.upn"),
            name=_text(u["name"], f"{path}.name"),
            eci=_bool(u.get("eci", False), f"{path}.eci"),
        )
        if user.id.lower() in ids:
            raise ScenarioError(f"{path}.id: {user.id} repeats users[{ids[user.id.lower()]}].id")
        if user.upn.lower() in upns:
            raise ScenarioError(f"{path}.upn: {user.upn} repeats users[{upns[user.upn.lower()]}]")
        if user.id.lower() == tenant.id.lower():
            raise ScenarioError(f"{path}.id: is the tenant's id")
        ids[user.id.lower()], upns[user.upn.lower()] = i, i
        out.append(user)
    return tuple(out)


def _policy(value: object) -> dict[str, Any]:
    p = _obj(value, "policy", optional=set(_POLICY_KEYS))
    for key, kind in _POLICY_KEYS.items():
        if key not in p:
            continue
        path, v = f"policy.{key}", p[key]
        if kind == "list":
            for i, item in enumerate(_list(v, path)):
                _text(item, f"{path}[{i}]")
        elif kind == "table":
            if not isinstance(v, dict):
                raise ScenarioError(f"{path}: must be an object of name → list of phrases")
            for name, phrases in v.items():
                for i, item in enumerate(_list(phrases, f"{path}.{name}")):
                    _text(item, f"{path}.{name}[{i}]")
        elif kind == "number":
            if _number(v, path) < 0:
                raise ScenarioError(f"{path}: must not be negative")
        else:
            _bool(v, path)
    return dict(p)


def _salesforce(value: object) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(value, dict):
        raise ScenarioError("salesforce: must be an object of object name → list of records")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, records in value.items():
        path = f"salesforce.{name}"
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", str(name)):
            raise ScenarioError(f"{path}: not a Salesforce object name")
        rows = _list(records, path)
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or not row:
                raise ScenarioError(f"{path}[{i}]: must be an object of field → value")
        out[str(name)] = [dict(r) for r in rows]
    return out


def _meeting(value: object, path: str, by_upn: dict[str, User]) -> Meeting:
    m = _obj(
        value,
        path,
        required={"id", "subject", "organizer", "start", "end"},
        optional={"participants", "transcript", "transcripts", "transcript_ready_after_s",
                  "recording", "allow_recording", "callrecord_after_s", "attendance_report",
                  "series"},
    )  # fmt: skip
    organizer = by_upn.get(_address(m["organizer"], f"{path}.organizer").lower())
    if organizer is None:
        raise ScenarioError(f"{path}.organizer: {m['organizer']!r} is not one of users")
    start, end = _time(m["start"], f"{path}.start"), _time(m["end"], f"{path}.end")
    if end <= start:
        raise ScenarioError(f"{path}.end: must be after start ({m['start']})")
    listed = _list(m.get("participants", []), f"{path}.participants")
    people = [_participant(p, f"{path}.participants[{i}]", by_upn) for i, p in enumerate(listed)]
    if not any(p.kind == "user" and p.upn == organizer.upn for p in people):
        people.insert(0, Participant("user", upn=organizer.upn, name=organizer.name))
    ready = _delay(m, "transcript_ready_after_s", path)
    recorded = _bool(m.get("recording", False), f"{path}.recording")
    allowed = _bool(m.get("allow_recording", True), f"{path}.allow_recording")
    if recorded and not allowed:
        raise ScenarioError(f"{path}.recording: a meeting with recording turned off has none")
    return Meeting(
        id=_text(m["id"], f"{path}.id"),
        subject=_text(m["subject"], f"{path}.subject"),
        organizer=organizer.upn,
        start=start,
        end=end,
        participants=tuple(people),
        transcripts=_transcripts(m, path),
        transcript_ready_after_s=ready,
        recording=recorded,
        allow_recording=allowed,
        callrecord_after_s=_delay(m, "callrecord_after_s", path),
        attendance_report=_bool(m.get("attendance_report", True), f"{path}.attendance_report"),
        series=_text(m["series"], f"{path}.series") if "series" in m else None,
    )


def _transcripts(m: dict[str, Any], path: str) -> tuple[str, ...]:
    """`transcripts` (in the order made) or its one-item shorthand `transcript` (null: none),
    never both."""
    if m.get("transcript") is not None and "transcripts" in m:
        raise ScenarioError(f"{path}.transcripts: give transcripts or transcript, not both")
    if m.get("transcript") is not None:
        texts, where = [m["transcript"]], [f"{path}.transcript"]
    else:
        texts = _list(m.get("transcripts", []), f"{path}.transcripts")
        where = [f"{path}.transcripts[{i}]" for i in range(len(texts))]
    for text, at in zip(texts, where, strict=True):
        if not _text(text, at).lstrip("\ufeff").startswith("WEBVTT"):
            raise ScenarioError(f"{at}: WebVTT must start with 'WEBVTT'")
    return tuple(texts)


def _delay(m: dict[str, Any], name: str, path: str) -> float:
    seconds = _number(m.get(name, 0), f"{path}.{name}")
    if seconds < 0:
        raise ScenarioError(f"{path}.{name}: must not be negative")
    return seconds


def _participant(value: object, path: str, by_upn: dict[str, User]) -> Participant:
    kinds = ("upn", "email", "phone", "guest")
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: must be an object")
    given = [k for k in kinds if k in value]
    if len(given) != 1:
        what = "needs one of" if not given else f"has {', '.join(given)}; needs exactly one of"
        raise ScenarioError(f"{path}: {what} upn, email, phone, guest")
    key = given[0]
    p = _obj(value, path, required={key}, optional={"name", "tenant"} if key == "email" else set())
    if key == "upn":
        user = by_upn.get(_address(p["upn"], f"{path}.upn").lower())
        if user is None:
            raise ScenarioError(f"{path}.upn: {p['upn']!r} is not one of users (use email)")
        return Participant("user", upn=user.upn, name=user.name)
    if key == "email":
        email = _address(p["email"], f"{path}.email")
        if email.lower() in by_upn:
            raise ScenarioError(f"{path}.email: {email} is a tenant user; list it as upn")
        name = _text(p["name"], f"{path}.name") if "name" in p else None
        tenant = _guid(p["tenant"], f"{path}.tenant") if "tenant" in p else None
        return Participant("external", email=email, name=name, tenant=tenant)
    if key == "phone":
        phone = _text(p["phone"], f"{path}.phone")
        if not _E164.match(phone):
            raise ScenarioError(f"{path}.phone: {phone!r} is not an E.164 number (+14255550100)")
        return Participant("phone", phone=phone)
    return Participant("guest", guest=_text(p["guest"], f"{path}.guest"))


# -- scalars -------------------------------------------------------------------------------
def _obj(
    value: object,
    path: str,
    required: AbstractSet[str] = frozenset(),
    optional: AbstractSet[str] = frozenset(),
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: must be an object")
    for key in sorted(required):
        if key not in value:
            raise ScenarioError(f"{path}.{key}: is required")
    for key in value:
        if key not in required and key not in optional:
            known = ", ".join(sorted(required | optional))
            raise ScenarioError(f"{path}.{key}: unknown field (known: {known})")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{path}: must be a list")
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{path}: must be a non-empty string")
    return value


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{path}: must be true or false")
    return value


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{path}: must be a number")
    return float(value)


def _guid(value: object, path: str) -> str:
    text = _text(value, path)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ScenarioError(f"{path}: {text!r} is not a GUID") from None


def _address(value: object, path: str) -> str:
    text = _text(value, path).strip()
    if not _ADDRESS.match(text):
        raise ScenarioError(f"{path}: {text!r} is not an e-mail address")
    return text


def _domain(value: object, path: str) -> str:
    text = _text(value, path).strip()
    if not _DOMAIN.match(text):
        raise ScenarioError(f"{path}: {text!r} is not a domain name")
    return text.rstrip(".")


def _time(value: object, path: str) -> dt.datetime:
    text = _text(value, path)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{path}: {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ScenarioError(f"{path}: {text!r} needs a time zone (end it with Z)")
    return when.astimezone(dt.UTC)
