"""`/users/{id}/onlineMeetings` (and `/me/…`): an organizer's meetings, found by joinWebUrl."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from emulators.graph.data import (
    both,
    context,
    iso,
    organized_meeting,
    select,
    target_user,
    user_path,
    world_of,
)
from emulators.graph.errors import bad_request
from emulators.graph.permissions import require_user_access
from emulators.graph.world import World
from emulators.scenario import Participant, User

APP_ROLE = "OnlineMeetings.Read.All"
SCOPE = "OnlineMeetings.Read"
_FILTER = re.compile(
    r"^\s*(joinWebUrl|joinMeetingIdSettings/joinMeetingId)\s+eq\s+'((?:[^']|'')*)'\s*$", re.I
)


def add_routes(app: web.Application) -> None:
    both(app, "onlineMeetings", find_meetings)
    both(app, "onlineMeetings/{meeting}", get_meeting)


async def find_meetings(request: web.Request) -> web.Response:
    """`$filter=JoinWebUrl eq '…'` (or joinMeetingId) among the user's own meetings."""
    user = target_user(request)
    require_user_access(request, user.id, app_role=APP_ROLE, scope=SCOPE)
    world = world_of(request)
    raw = request.query.get("$filter")
    if not raw:
        raise bad_request(
            "Filter on JoinWebUrl or joinMeetingIdSettings/joinMeetingId is required."
        )
    match = _FILTER.match(raw)
    if not match:
        raise bad_request(f"Invalid filter clause: '{raw}'.")
    field, value = match.group(1).lower(), match.group(2).replace("''", "'")
    # A series' occurrences are one online meeting: found once, as its first occurrence.
    firsts = {world.occurrences(world.online_meeting_id(m.id))[0] for m in world.scenario.meetings}
    found = [
        meeting(request, world, user, m.id)
        for m in world.scenario.meetings
        if m.id in firsts
        and world.organizer_id(m.id) == user.id
        and _matches(field, value, world, m.id)
    ]
    fragment = f"{user_path(request, user)}/onlineMeetings"
    return web.json_response({"@odata.context": context(request, fragment), "value": found})


def _matches(field: str, value: str, world: World, meeting_id: str) -> bool:
    if field != "joinweburl":
        return value == join_meeting_id(world, meeting_id)
    # The value as sent, or once more URL-encoded (Graph's docs show it that way).
    url = world.join_web_url(meeting_id)
    return value == url or unquote(value) == url


async def get_meeting(request: web.Request) -> web.Response:
    user = target_user(request)
    require_user_access(request, user.id, app_role=APP_ROLE, scope=SCOPE)
    # A recurring series: one online meeting, shown as its first occurrence is scheduled.
    meeting_id = organized_meeting(request, user)[0]
    body = meeting(request, world_of(request), user, meeting_id)
    fragment = f"{user_path(request, user)}/onlineMeetings/$entity"
    return web.json_response({"@odata.context": context(request, fragment)} | body)


def join_meeting_id(world: World, meeting_id: str) -> str:
    """The meeting code: one per online meeting, so one for a whole series."""
    key = world.series_key(meeting_id)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"joinid:{key}").int % 10**14).zfill(14)


def meeting(request: web.Request, world: World, organizer: User, meeting_id: str) -> dict[str, Any]:
    """An onlineMeeting; `participants` lists the invitees (who joined is another matter)."""
    m = world.meeting(meeting_id)
    code = join_meeting_id(world, meeting_id)
    body = {
        "id": world.online_meeting_id(meeting_id),
        "creationDateTime": iso(m.start - dt.timedelta(days=2)),
        "startDateTime": iso(m.start),
        "endDateTime": iso(m.end),
        "joinUrl": world.join_web_url(meeting_id),
        "joinWebUrl": world.join_web_url(meeting_id),
        "meetingCode": code,
        "subject": m.subject,
        "isBroadcast": False,
        "autoAdmittedUsers": "everyoneInCompany",
        "outerMeetingAutoAdmittedUsers": None,
        "isEntryExitAnnounced": True,
        "allowedPresenters": "everyone",
        "allowMeetingChat": "enabled",
        "allowTeamworkReactions": True,
        "allowAttendeeToEnableMic": True,
        "allowAttendeeToEnableCamera": True,
        "allowRecording": m.allow_recording,
        "allowTranscription": True,
        "recordAutomatically": False,
        "externalId": None,
        "videoTeleconferenceId": None,
        "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
        "joinMeetingIdSettings": {"isPasscodeRequired": False,
                                  "joinMeetingId": code, "passcode": None},
        "chatInfo": {"threadId": world.thread_id(meeting_id), "messageId": "0",
                     "replyChainMessageId": None},
        "audioConferencing": None,
        "broadcastSettings": None,
        "participants": {
            "organizer": {"upn": organizer.upn, "role": "presenter",
                          "identity": _identity(organizer.id, world.tenant_id)},
            "attendees": invitees(world, meeting_id),
        },
    }  # fmt: skip
    return select(request, body)


def _identity(user_id: str | None, tenant_id: str | None) -> dict[str, Any]:
    user = {"id": user_id, "displayName": None, "tenantId": tenant_id, "identityProvider": "AAD"}
    return {"application": None, "device": None, "phone": None, "user": user}


def invitees(world: World, meeting_id: str) -> list[dict[str, Any]]:
    """The people the organizer invited: users and e-mail addresses, each once; dial-ins and
    anonymous guests are never on an invitation."""
    m = world.meeting(meeting_id)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    # A series' invitation covers every occurrence: the people of all of them.
    occurrences = world.occurrences(world.online_meeting_id(meeting_id))
    people = [p for o in occurrences or (meeting_id,) for p in world.meeting(o).participants]
    for person in people:
        address = _address(person)
        if address is None or address.lower() == m.organizer.lower() or address.lower() in seen:
            continue
        seen.add(address.lower())
        # Teams leaves the invitees' names and tenants empty (docs #12337).
        tenant = world.tenant_id if person.kind == "user" else None
        out.append(
            {
                "upn": address,
                "role": "attendee",
                "identity": _identity(world.person_id(person), tenant),
            }
        )
    return out


def _address(person: Participant) -> str | None:
    return person.upn if person.kind == "user" else person.email
