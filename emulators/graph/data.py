"""Graph's data routes under /v1.0 and what they share: OData envelopes, paging, the target user.

The routes themselves live in `users.py`, `callrecords.py`, `meetings.py`, `attendance.py`,
`transcripts.py`, `recordings.py` and `drive.py`; `add_routes` registers them all.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulators.graph.auth import caller
from emulators.graph.errors import GraphHTTPError, bad_request, not_found
from emulators.graph.permissions import POLICY_KEY, AccessPolicy, require_user_access
from emulators.graph.world import World
from emulators.scenario import User

GRAPH_ROOT = "/v1.0"


@dataclass
class DataOptions:
    """Page sizes of the data routes (Graph's own by default; tests shrink them)."""

    call_records_page: int = 60  # GET /communications/callRecords
    participants_page: int = 130  # participants_v2, inline and paged
    sessions_page: int = 60
    # Graph's docs give no page size for these two: a small one, so that a meeting with many
    # attendees, or a series with many transcripts, pages here as it may live.
    transcripts_page: int = 10  # GET …/onlineMeetings/{id}/transcripts
    attendance_page: int = 10  # attendanceRecords, inline and paged


WORLD_KEY = web.AppKey("graph_data_world", World)
OPTIONS_KEY = web.AppKey("graph_data_options", DataOptions)


def add_routes(app: web.Application, world: World) -> None:
    """Register every data route of the emulator on `app`."""
    # Imported here: those modules import this one's helpers.
    import emulators.graph.attendance as attendance
    import emulators.graph.callrecords as callrecords
    import emulators.graph.drive as drive
    import emulators.graph.meetings as meetings
    import emulators.graph.recordings as recordings
    import emulators.graph.transcripts as transcripts
    import emulators.graph.users as users

    app[WORLD_KEY] = world
    app[OPTIONS_KEY] = DataOptions()
    app[POLICY_KEY] = AccessPolicy.of(world.scenario)
    for module in (users, callrecords, transcripts, recordings, attendance, meetings, drive):
        module.add_routes(app)


def world_of(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def options_of(request: web.Request) -> DataOptions:
    return request.app[OPTIONS_KEY]


# -- users and meetings named in the path ---------------------------------------------------
def target_user(request: web.Request) -> User:
    """`/users/{uid}/…` (id or UPN), `/me/…` (the delegated caller) or the organizer of
    `communications/onlineMeetings/{meeting}/…`; 404 for unknown users."""
    world = world_of(request)
    uid = request.match_info.get("uid")
    if uid is None and request.path.startswith(f"{GRAPH_ROOT}/communications/"):
        # `communications/onlineMeetings/{id}/…`: the meeting names its organizer.
        meeting_id = world.meeting_by_online_meeting(request.match_info.get("meeting", ""))
        if meeting_id is None:
            raise not_found("The requested resource does not exist.", code="NotFound")
        return world.organizer(meeting_id)
    if uid is None:
        who = caller(request)
        if who.user_id is None:
            raise bad_request("/me request is only valid with delegated authentication flow.")
        uid = who.user_id
    user = world.user(uid)
    if user is None:
        raise GraphHTTPError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{uid}' does not exist or one of its queried reference-property objects "
            "are not present.",
        )
    return user


def organized_meeting(request: web.Request, user: User) -> tuple[str, ...]:
    """The scenario meetings of `{meetingId}` in the path (one, or every occurrence of a
    recurring series, earliest first) if `user` organizes it; 404 otherwise."""
    world = world_of(request)
    occurrences = world.occurrences(request.match_info["meeting"])
    if not occurrences or world.organizer_id(occurrences[0]) != user.id:
        raise not_found("The requested resource does not exist.", code="NotFound")
    return occurrences


def meeting_of(request: web.Request, permission: str) -> tuple[World, tuple[str, ...], str]:
    """(world, the scenario meetings, the `@odata.context` prefix) of `{meeting}` in the path,
    after checking the caller may read the organizer's meetings with `permission`. A series'
    artifacts (transcripts, attendance reports, recordings) hang off its one online meeting,
    so the routes answer for every occurrence."""
    user = target_user(request)
    require_user_access(request, user.id, app_role=permission, scope=permission)
    occurrences = organized_meeting(request, user)
    prefix = f"{user_path(request, user)}/onlineMeetings('{request.match_info['meeting']}')"
    return world_of(request), occurrences, prefix


def user_path(request: web.Request, user: User) -> str:
    """How the request named its user, for `@odata.context`."""
    if "uid" in request.match_info:
        return f"users('{user.id}')"
    return "communications" if request.path.startswith(f"{GRAPH_ROOT}/communications/") else "me"


def both(
    app: web.Application, path: str, handler: Callable[..., Any], communications: bool = False
) -> None:
    """Register a `/users/{uid}/…` route, its `/me/…` twin and, for the URLs Graph itself
    hands out (transcriptContentUrl in notifications), a `/communications/…` one."""
    app.router.add_get(f"{GRAPH_ROOT}/users/{{uid}}/{path}", handler)
    app.router.add_get(f"{GRAPH_ROOT}/me/{path}", handler)
    if communications:
        app.router.add_get(f"{GRAPH_ROOT}/communications/{path}", handler)


# -- OData ---------------------------------------------------------------------------------
def origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def context(request: web.Request, fragment: str) -> str:
    return f"{origin(request)}{GRAPH_ROOT}/$metadata#{fragment}"


def iso(when: dt.datetime | float) -> str:
    """Graph's UTC timestamps: `2026-11-20T15:00:00Z` (seven digits when there are fractions)."""
    if not isinstance(when, dt.datetime):
        when = dt.datetime.fromtimestamp(when, dt.UTC)
    when = when.astimezone(dt.UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, what: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.strip().strip("'").replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid {what}: '{text}' is not a DateTimeOffset.") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def top(request: web.Request, limit: int, dollar_top: bool = True) -> int:
    """`$top` (where the route supports it) or `Prefer: odata.maxpagesize`, capped at `limit`."""
    size = limit
    prefer = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("Prefer", ""))
    if prefer:
        size = min(size, int(prefer.group(1)))
    raw = request.query.get("$top") if dollar_top else None
    if raw is not None:
        if not raw.isdigit() or int(raw) < 1:
            raise bad_request(f"Invalid value '{raw}' for $top.")
        size = min(size, int(raw))
    return max(size, 1)


def skip(request: web.Request) -> int:
    token = request.query.get("$skiptoken")
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
        return int(offset)
    except (ValueError, KeyError, TypeError):
        raise bad_request("The $skiptoken is not valid.") from None


def next_link(request: web.Request, offset: int, path: str | None = None) -> str:
    """The URL of the page starting at `offset`, keeping the request's other query options."""
    token = base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()
    if path is not None:  # a nested collection's own route: none of this request's options
        return str(request.url.with_path(path).with_query({"$skiptoken": token}))
    query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
    query["$skiptoken"] = token
    return str(request.url.with_query(query))


def page(
    request: web.Request, items: Sequence[dict[str, Any]], size: int, path: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `items` from the request's `$skiptoken` (the first when `path` names
    another route, for an inline expansion), and the next page's link if any."""
    start = skip(request) if path is None else 0
    chunk = list(items[start : start + size])
    more = start + size < len(items)
    return chunk, next_link(request, start + size, path) if more else None


def collection(
    request: web.Request, fragment: str, items: Sequence[dict[str, Any]], size: int
) -> web.Response:
    """`{"@odata.context", "value", "@odata.nextLink"?}` for one page of `items`."""
    chunk, link = page(request, items, size)
    body: dict[str, Any] = {"@odata.context": context(request, fragment)}
    if link:
        body["@odata.nextLink"] = link
    body["value"] = chunk
    return web.json_response(body)


def select(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """Apply `$select` to an entity, keeping `id` and annotations as Graph does."""
    raw = request.query.get("$select")
    if not raw:
        return body
    wanted = {s.strip().lower() for s in raw.split(",") if s.strip()}
    return {k: v for k, v in body.items() if k.lower() in wanted or k == "id" or k.startswith("@")}


def expansions(request: web.Request) -> dict[str, str]:
    """`$expand=a,b($expand=c)` as {"a": "", "b": "$expand=c"} (top-level names lower-cased)."""
    raw = request.query.get("$expand", "")
    out: dict[str, str] = {}
    depth, current = 0, ""
    for ch in raw + ",":
        if ch == "," and depth == 0:
            name, _, rest = current.strip().partition("(")
            if name:
                out[name.strip().lower()] = rest[:-1] if rest.endswith(")") else rest
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        current += ch
    return out
