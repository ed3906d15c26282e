"""Meeting recordings: metadata, and content whose every download is counted (the product must
never download one; DESIGN §1.4)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulators.graph.data import (
    GRAPH_ROOT,
    both,
    context,
    iso,
    meeting_of,
    origin,
    select,
)
from emulators.graph.errors import not_found
from emulators.graph.transcripts import organizer_identity
from emulators.graph.world import World

PERMISSION = "OnlineMeetingRecording.Read.All"  # the app role and the delegated scope alike
ITEM = "onlineMeetings/{meeting}/recordings/{recording}"
# The start of an MP4 file: enough for a client to see what it got.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free"


def add_routes(app: web.Application) -> None:
    both(app, "onlineMeetings/{meeting}/recordings", list_recordings, communications=True)
    both(app, ITEM, get_recording, communications=True)
    both(app, ITEM + "/content", get_content, communications=True)


def _meeting(request: web.Request) -> tuple[World, tuple[str, ...], str]:
    return meeting_of(request, PERMISSION)


def _available(world: World, meeting_id: str) -> bool:
    return world.meeting(meeting_id).recording and world.played_at(meeting_id) is not None


def _one(request: web.Request) -> tuple[World, str, str]:
    """The occurrence that made `{recording}`; 404 unless it is available."""
    world, occurrences, prefix = _meeting(request)
    wanted = request.match_info["recording"]
    for meeting_id in occurrences:
        if _available(world, meeting_id) and wanted == world.recording_id(meeting_id):
            return world, meeting_id, prefix
    raise not_found(f"Recording '{wanted}' was not found.", code="NotFound")


async def list_recordings(request: web.Request) -> web.Response:
    """The recordings of every played occurrence (one meeting id for a whole series)."""
    world, occurrences, prefix = _meeting(request)
    items = [recording(request, world, m) for m in occurrences if _available(world, m)]
    body = {"@odata.context": context(request, f"{prefix}/recordings"), "value": items}
    return web.json_response(body)


async def get_recording(request: web.Request) -> web.Response:
    world, meeting_id, prefix = _one(request)
    body = select(request, recording(request, world, meeting_id))
    ctx = context(request, f"{prefix}/recordings/$entity")
    return web.json_response({"@odata.context": ctx} | body)


async def get_content(request: web.Request) -> web.Response:
    world, _, _ = _one(request)
    world.recording_content_downloads += 1
    return web.Response(body=MP4, content_type="video/mp4")


def recording(request: web.Request, world: World, meeting_id: str) -> dict[str, Any]:
    om_id, r_id = world.online_meeting_id(meeting_id), world.recording_id(meeting_id)
    organizer = world.organizer_id(meeting_id)
    url = (
        f"{origin(request)}{GRAPH_ROOT}/users/{organizer}/onlineMeetings/{om_id}/recordings/{r_id}"
    )
    played_at = world.played_at(meeting_id) or 0.0
    return {
        "id": r_id,
        "meetingId": om_id,
        "callId": world.call_record_id(meeting_id),
        "contentCorrelationId": world.content_correlation_id(meeting_id),
        "recordingContentUrl": f"{url}/content",
        "createdDateTime": iso(played_at),
        "endDateTime": iso(played_at),
        "meetingOrganizer": organizer_identity(world, meeting_id),
    }
