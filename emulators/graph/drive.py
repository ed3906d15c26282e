"""OneDrive: the organizer's `Recordings` folder, holding the driveItem of each recorded meeting
played (metadata only), and the file content, whose every download is counted.

Teams saves a meeting's recording in its organizer's OneDrive, folder `Recordings`, named
`{subject}-{yyyyMMdd_HHmmss}-Meeting Recording.mp4`; the emulator writes it when the meeting
is played, created at the meeting's end (when Teams uploads it).

Who may read it, as Graph's "List children of a driveItem" permissions table says:
"Delegated (work or school account): Files.Read (least privileged); Files.ReadWrite,
Files.Read.All, Files.ReadWrite.All, Sites.Read.All, Sites.ReadWrite.All (higher)" and
"Application: Files.Read.All; Files.ReadWrite.All, Sites.Read.All, Sites.ReadWrite.All".
`Files.Read` reaches only the signed-in user's own files.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from emulators.graph.auth import caller
from emulators.graph.data import (
    GRAPH_ROOT,
    context,
    iso,
    page,
    select,
    target_user,
    top,
    world_of,
)
from emulators.graph.errors import GraphHTTPError, not_found
from emulators.graph.world import World
from emulators.scenario import User

FOLDER = "Recordings"
PAGE = 200  # OneDrive's default page of children
DELEGATED = frozenset({"Files.Read", "Files.ReadWrite", "Files.Read.All", "Files.ReadWrite.All",
                       "Sites.Read.All", "Sites.ReadWrite.All"})  # fmt: skip
APPLICATION = frozenset({"Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All",
                         "Sites.ReadWrite.All"})  # fmt: skip
DENIED = "Access denied"
_UNSAFE = re.compile(r'["*:<>?/\\|#%]')  # characters OneDrive refuses in a file name


def add_routes(app: web.Application) -> None:
    for prefix in (f"{GRAPH_ROOT}/users/{{uid}}", f"{GRAPH_ROOT}/me"):
        # Path addressing is case-insensitive in OneDrive: `root:/recordings:` is the folder too.
        app.router.add_get(prefix + "/drive/root:/{folder}:/children", list_children)
        app.router.add_get(prefix + "/drive/items/{item}", get_item)
        app.router.add_get(prefix + "/drive/items/{item}/content", get_content)


def _drive_owner(request: web.Request) -> User:
    """The drive's owner, once the caller may read it; 403 accessDenied otherwise."""
    user = target_user(request)
    who = caller(request)
    if who.is_app:
        allowed = bool(APPLICATION & who.roles)
    else:
        own = who.user_id is not None and who.user_id.lower() == user.id.lower()
        allowed = own and bool(DELEGATED & who.scopes)
    if not allowed:
        raise GraphHTTPError(403, "accessDenied", DENIED)
    return user


def file_name(subject: str, start: dt.datetime) -> str:
    """The name Teams gives a recording: subject, start time, `Meeting Recording`."""
    clean = _UNSAFE.sub("", subject).strip() or "Meeting"
    return f"{clean}-{start.astimezone(dt.UTC):%Y%m%d_%H%M%S}-Meeting Recording.mp4"


def item_id(world: World, meeting_id: str) -> str:
    return "01" + world.recording_id(meeting_id).replace("=", "").upper()[:32]


def recorded(world: World, user: User) -> list[str]:
    """The user's played, recorded meetings: the files of their Recordings folder."""
    return [
        m.id
        for m in world.scenario.meetings
        if m.recording and world.played_at(m.id) is not None and world.organizer_id(m.id) == user.id
    ]


def drive_item(world: World, user: User, meeting_id: str) -> dict[str, Any]:
    m = world.meeting(meeting_id)
    name = file_name(m.subject, m.start)
    host = user.upn.split("@", 1)[1].split(".", 1)[0]
    person = re.sub(r"[^a-z0-9]", "_", user.upn.lower())
    web_url = f"https://{host}-my.sharepoint.com/personal/{person}/Documents/{FOLDER}/{quote(name)}"
    iid = item_id(world, meeting_id)
    seconds = max(0, int((m.end - m.start).total_seconds()))
    return {
        "id": iid,
        "name": name,
        "webUrl": web_url,
        "createdDateTime": iso(m.end),
        "lastModifiedDateTime": iso(m.end),
        "size": 110_000 * seconds,  # about 400 MB an hour, as Teams' docs say
        "file": {"mimeType": "video/mp4"},
        "parentReference": {"driveType": "business", "path": f"/drive/root:/{FOLDER}"},
    }


async def list_children(request: web.Request) -> web.Response:
    user = _drive_owner(request)
    world = world_of(request)
    ids = recorded(world, user)
    if request.match_info["folder"].lower() != FOLDER.lower() or not ids:
        # Teams creates the folder with the first recording.
        raise not_found("The resource could not be found.", code="itemNotFound")
    items = [select(request, drive_item(world, user, mid)) for mid in ids]
    chunk, link = page(request, items, top(request, PAGE))
    body: dict[str, Any] = {"@odata.context": context(request, "users('…')/drive/root/children")}
    if link:
        body["@odata.nextLink"] = link
    body["value"] = chunk
    return web.json_response(body)


def _one(request: web.Request) -> tuple[World, User, str]:
    user = _drive_owner(request)
    world = world_of(request)
    for mid in recorded(world, user):
        if item_id(world, mid) == request.match_info["item"]:
            return world, user, mid
    raise not_found("The resource could not be found.", code="itemNotFound")


async def get_item(request: web.Request) -> web.Response:
    world, user, mid = _one(request)
    return web.json_response(select(request, drive_item(world, user, mid)))


async def get_content(request: web.Request) -> web.Response:
    world, _, _ = _one(request)
    world.recording_content_downloads += 1
    return web.Response(body=b"\x00\x00\x00\x18ftypmp42", content_type="video/mp4")
