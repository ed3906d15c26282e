"""`/communications/callRecords`: records of played meetings, participants_v2 and sessions."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from emulators.graph.data import (
    GRAPH_ROOT,
    collection,
    context,
    expansions,
    iso,
    options_of,
    page,
    parse_time,
    select,
    top,
    world_of,
)
from emulators.graph.errors import bad_request, not_found
from emulators.graph.permissions import require_app_role
from emulators.graph.users import call_identity
from emulators.graph.world import World

ROLE = "CallRecords.Read.All"
BASE = f"{GRAPH_ROOT}/communications/callRecords"
_CLAUSE = re.compile(
    r"^\s*(startDateTime|endDateTime|lastModifiedDateTime)\s+(ge|gt|le|lt|eq)\s+(\S+)\s*$", re.I
)
_OPS: dict[str, Callable[[dt.datetime, dt.datetime], bool]] = {
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
    "eq": lambda a, b: a == b,
}


def add_routes(app: web.Application) -> None:
    app.router.add_get(BASE, list_records)
    app.router.add_get(f"{BASE}/{{id}}", get_record)
    app.router.add_get(f"{BASE}/{{id}}/participants_v2", list_participants)
    app.router.add_get(f"{BASE}/{{id}}/sessions", list_sessions)


# -- handlers ------------------------------------------------------------------------------
async def list_records(request: web.Request) -> web.Response:
    """Played meetings' records, filtered on their times, `call_records_page` per page."""
    require_app_role(request, ROLE)
    world = world_of(request)
    keep = _filter(request.query.get("$filter"))
    records = [
        select(request, record(request, world, m))
        for m in world.played()
        if world.call_record_ready(m) and keep(world, m)
    ]
    size = top(request, options_of(request).call_records_page)
    return collection(request, "communications/callRecords", records, size)


async def get_record(request: web.Request) -> web.Response:
    """One record (404 until it exists: `callrecord_after_s` after play), `organizer_v2`
    always expanded."""
    require_app_role(request, ROLE)
    world, meeting_id = _played(request)
    body = record(request, world, meeting_id)
    expand = expansions(request)
    unknown = set(expand) - {"participants_v2", "sessions", "organizer_v2"}
    if unknown:
        raise bad_request(f"Could not find a property named '{sorted(unknown)[0]}' on type "
                          "'microsoft.graph.callRecords.callRecord'.")  # fmt: skip
    body = select(request, body)
    body["organizer_v2@odata.context"] = context(
        request, f"communications/callRecords('{body['id']}')/organizer_v2/$entity"
    )
    body["organizer_v2"] = _participant(world, meeting_id, organizer_index(world, meeting_id))
    base = f"{BASE}/{body['id']}"
    if "participants_v2" in expand:
        items = participants(world, meeting_id)
        size = options_of(request).participants_page
        chunk, link = page(request, items, size, path=f"{base}/participants_v2")
        body["participants_v2@odata.context"] = context(
            request, f"communications/callRecords('{body['id']}')/participants_v2"
        )
        if link:
            body["participants_v2@odata.nextLink"] = link
        body["participants_v2"] = chunk
    if "sessions" in expand:
        with_segments = "segments" in expand["sessions"]
        items = sessions(world, meeting_id, segments=with_segments)
        chunk, link = page(request, items, options_of(request).sessions_page, f"{base}/sessions")
        if link:
            body["sessions@odata.nextLink"] = link
        body["sessions"] = chunk
    body["@odata.context"] = context(request, "communications/callRecords/$entity")
    return web.json_response(body)


async def list_participants(request: web.Request) -> web.Response:
    """Pages of at most 130; the page size is chosen with `Prefer: odata.maxpagesize` (the
    route takes `$select` only)."""
    require_app_role(request, ROLE)
    world, meeting_id = _played(request)
    size = top(request, options_of(request).participants_page, dollar_top=False)
    fragment = f"communications/callRecords('{request.match_info['id']}')/participants_v2"
    return collection(request, fragment, participants(world, meeting_id), size)


async def list_sessions(request: web.Request) -> web.Response:
    require_app_role(request, ROLE)
    world, meeting_id = _played(request)
    with_segments = "segments" in expansions(request)
    size = top(request, options_of(request).sessions_page, dollar_top=False)
    fragment = f"communications/callRecords('{request.match_info['id']}')/sessions"
    return collection(request, fragment, sessions(world, meeting_id, with_segments), size)


# -- shapes --------------------------------------------------------------------------------
def record(request: web.Request, world: World, meeting_id: str) -> dict[str, Any]:
    m = world.meeting(meeting_id)
    version = world.call_record_version(meeting_id)
    made_at = world.call_record_ready_at(meeting_id) or 0.0
    return {
        "version": version,
        "type": "groupCall",
        "modalities": ["audio", "video", "screenSharing"],
        # Later versions come from later telemetry: a second apart is enough to order them.
        "lastModifiedDateTime": iso(made_at + version - 1),
        "startDateTime": iso(m.start),
        "endDateTime": iso(m.end),
        "id": world.call_record_id(meeting_id),
        "joinWebUrl": world.join_web_url(meeting_id),
        # Deprecated: Graph sends no data in these after 30 June 2026.
        "organizer": None,
        "participants": None,
    }


def participant_id(world: World, meeting_id: str, index: int) -> str:
    """The person's own id for their first device; another device gets an id of its own."""
    m = world.meeting(meeting_id)
    person = m.participants[index]
    own = world.person_id(person)
    if own is not None and all(world.person_id(p) != own for p in m.participants[:index]):
        return own
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"participant:{meeting_id}:{index}"))


def _participant(world: World, meeting_id: str, index: int) -> dict[str, Any]:
    person = world.meeting(meeting_id).participants[index]
    return {
        "id": participant_id(world, meeting_id, index),
        "identity": call_identity(world, person, meeting_id, index),
        "administrativeUnitInfos": [],
    }


def organizer_index(world: World, meeting_id: str) -> int:
    """Where the organizer sits in the meeting's participants (the scenario guarantees one)."""
    m = world.meeting(meeting_id)
    return next(
        i for i, p in enumerate(m.participants) if p.kind == "user" and p.upn == m.organizer
    )


def participants(world: World, meeting_id: str) -> list[dict[str, Any]]:
    """One entry per device: the same person listed twice appears twice."""
    count = len(world.meeting(meeting_id).participants)
    return [_participant(world, meeting_id, i) for i in range(count)]


def sessions(world: World, meeting_id: str, segments: bool) -> list[dict[str, Any]]:
    """One session per device, its caller the participant and its callee the conference."""
    out = []
    for index, person in enumerate(world.meeting(meeting_id).participants):
        start, end = world.joined(meeting_id, index)
        identity = call_identity(world, person, meeting_id, index)
        associated: dict[str, Any] = next((v for v in identity.values() if v), {})
        caller = {
            "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
            "identity": identity,
            "associatedIdentity": {k: v for k, v in associated.items() if k != "@odata.type"},
            "userAgent": {"@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
                          "headerValue": "Microsoft Teams", "platform": "windows",
                          "productFamily": "teams", "role": "user"},
            "feedback": None,
        }  # fmt: skip
        callee = {
            "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
            "userAgent": {"@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
                          "headerValue": None, "role": "conferencing"},
        }  # fmt: skip
        sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"session:{meeting_id}:{index}"))
        session: dict[str, Any] = {
            "id": sid, "modalities": ["audio", "video"], "startDateTime": iso(start),
            "endDateTime": iso(end), "isTest": False, "failureInfo": None,
            "caller": caller, "callee": callee,
        }  # fmt: skip
        if segments:
            session["segments"] = [
                {"id": sid, "startDateTime": iso(start), "endDateTime": iso(end),
                 "caller": caller, "callee": callee, "failureInfo": None, "media": []}
            ]  # fmt: skip
        out.append(session)
    return out


# -- helpers -------------------------------------------------------------------------------
def _played(request: web.Request) -> tuple[World, str]:
    world = world_of(request)
    record_id = request.match_info["id"]
    meeting_id = world.meeting_by_call_record(record_id)
    if meeting_id is None or not world.call_record_ready(meeting_id):
        raise not_found(f"Call record '{record_id}' was not found.", code="NotFound")
    return world, meeting_id


def _filter(raw: str | None) -> Callable[[World, str], bool]:
    """`startDateTime ge X and startDateTime lt Y` (any of the record's times, any compare)."""
    if not raw:
        return lambda world, meeting_id: True
    clauses = []
    for part in re.split(r"\s+and\s+", raw.strip(), flags=re.I):
        match = _CLAUSE.match(part)
        if not match:
            raise bad_request(f"Invalid filter clause: '{part}'.")
        field, op, value = match.group(1).lower(), match.group(2).lower(), match.group(3)
        clauses.append((field, _OPS[op], parse_time(value, field)))

    def keep(world: World, meeting_id: str) -> bool:
        m = world.meeting(meeting_id)
        made = dt.datetime.fromtimestamp(world.call_record_ready_at(meeting_id) or 0.0, dt.UTC)
        times = {"startdatetime": m.start, "enddatetime": m.end, "lastmodifieddatetime": made}
        return all(op(times[field], when) for field, op, when in clauses)

    return keep
