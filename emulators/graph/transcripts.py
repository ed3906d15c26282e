"""Meeting transcripts: list, metadata, WebVTT content (counted), getAllTranscripts and delta."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

from aiohttp import web

from emulators.graph.data import (
    GRAPH_ROOT,
    both,
    collection,
    context,
    iso,
    meeting_of,
    options_of,
    origin,
    page,
    parse_time,
    select,
    target_user,
    top,
    world_of,
)
from emulators.graph.errors import bad_request, not_found
from emulators.graph.permissions import require_app_role, require_policy
from emulators.graph.world import World

PERMISSION = "OnlineMeetingTranscript.Read.All"  # the app role and the delegated scope alike
ITEM = "onlineMeetings/{meeting}/transcripts/{transcript}"
_ARG = re.compile(r"(\w+)\s*=\s*('(?:[^']|'')*'|[^,)]*)")
_TIMING = re.compile(r"^(-?[\d:.]+)\s+-->\s+(-?[\d:.]+)")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]*)>")
_TAG = re.compile(r"</?[^>]+>")
VTT = "text/vtt"


def add_routes(app: web.Application) -> None:
    users = f"{GRAPH_ROOT}/users/{{uid}}/onlineMeetings"
    all_transcripts = r"{fn:getAllTranscripts\([^/]*\)}"
    app.router.add_get(f"{users}/{all_transcripts}", get_all)
    app.router.add_get(f"{users}/{all_transcripts}/delta", get_all_delta)
    both(app, "onlineMeetings/{meeting}/transcripts", list_transcripts, communications=True)
    both(app, ITEM, get_transcript, communications=True)
    both(app, ITEM + "/content", get_content, communications=True)
    both(app, ITEM + "/metadataContent", get_metadata_content, communications=True)


# -- one meeting ---------------------------------------------------------------------------
def _meeting(request: web.Request) -> tuple[World, tuple[str, ...], str]:
    return meeting_of(request, PERMISSION)


def _ready(request: web.Request) -> tuple[World, str, str, int]:
    """The occurrence that made `{transcript}` and which of its transcripts it is; 404 until
    ready."""
    world, occurrences, prefix = _meeting(request)
    wanted = request.match_info["transcript"]
    for meeting_id in occurrences:
        index = world.transcript_index(meeting_id, wanted)
        if index is not None and world.transcript_ready(meeting_id):
            return world, meeting_id, prefix, index
    raise not_found(f"Transcript '{wanted}' was not found.", code="NotFound")


async def list_transcripts(request: web.Request) -> web.Response:
    """The meeting's ready transcripts, newest first as Graph's example lists them, in pages
    of `transcripts_page` with `@odata.nextLink`. "This method doesn't support any OData
    query parameters": no `$top`; only the Get page's `$filter=contentCorrelationId eq '…'`.

    A recurring series is one online meeting: the list holds the transcripts of every
    occurrence played, each with its own `createdDateTime` (Graph's example lists one
    meeting's transcripts of two days)."""
    world, occurrences, prefix = _meeting(request)
    made = [
        (world.transcript_created_at(meeting_id, i) or 0.0, meeting_id, i)
        for meeting_id in occurrences
        if world.transcript_ready(meeting_id)
        for i in range(len(world.meeting(meeting_id).transcripts))
    ]
    made.sort(key=lambda t: t[0], reverse=True)
    items = [transcript(request, world, meeting_id, i) for _, meeting_id, i in made]
    wanted = re.match(r"^\s*contentCorrelationId\s+eq\s+'([^']*)'\s*$",
                      request.query.get("$filter", ""), re.I)  # fmt: skip
    if request.query.get("$filter") and wanted is None:
        raise bad_request(f"Invalid filter clause: '{request.query['$filter']}'.")
    if wanted:
        items = [t for t in items if t["contentCorrelationId"] == wanted.group(1)]
    size = options_of(request).transcripts_page
    return collection(request, f"{prefix}/transcripts", items, size)


async def get_transcript(request: web.Request) -> web.Response:
    world, meeting_id, prefix, index = _ready(request)
    body = select(request, transcript(request, world, meeting_id, index))
    ctx = context(request, f"{prefix}/transcripts/$entity")
    return web.json_response({"@odata.context": ctx} | body)


def _want_vtt(request: web.Request) -> None:
    """WebVTT is the one format left (DOCX ended 31 May 2023): `$format=text/vtt`, or an
    `Accept` that admits it. Graph refuses the SDK's default `Accept` with 400 "Invalid
    format 'application/octet-stream, application/json' specified."."""
    fmt = request.query.get("$format")
    if fmt is not None:
        if fmt.strip().lower() != VTT:
            raise bad_request(f"Invalid format '{fmt}' specified.")
        return
    accept = request.headers.get("Accept", "").strip()
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if accept and not kinds & {VTT, "text/*", "*/*"}:
        raise bad_request(f"Invalid format '{accept}' specified.")


async def get_content(request: web.Request) -> web.Response:
    """The WebVTT (`Accept: text/vtt` or `$format=text/vtt`); every download counts."""
    world, meeting_id, _, index = _ready(request)
    _want_vtt(request)
    _count(world, meeting_id)
    return web.Response(
        body=world.meeting(meeting_id).transcripts[index].encode(), content_type=VTT
    )


async def get_metadata_content(request: web.Request) -> web.Response:
    """VTT whose cues are JSON: speaker, text, language and absolute times (metered too)."""
    world, meeting_id, _, index = _ready(request)
    _count(world, meeting_id)
    m = world.meeting(meeting_id)
    lines = ["WEBVTT", ""]
    for start, end, speaker, text in cues(m.transcripts[index]):
        at, until = m.start + dt.timedelta(seconds=start), m.start + dt.timedelta(seconds=end)
        lines += [f"{_stamp(start)} --> {_stamp(end)}",
                  json.dumps({"startDateTime": iso(at), "endDateTime": iso(until),
                              "speakerName": speaker, "spokenText": text,
                              "spokenLanguage": "en-us"}), ""]  # fmt: skip
    return web.Response(text="\n".join(lines), content_type=VTT)


def _count(world: World, meeting_id: str) -> None:
    downloads = world.transcript_content_downloads
    downloads[meeting_id] = downloads.get(meeting_id, 0) + 1


# -- getAllTranscripts (app only) ----------------------------------------------------------
def _all(request: web.Request) -> tuple[World, list[tuple[str, dict[str, Any]]]]:
    """Ready transcripts of `meetingOrganizerUserId`'s meetings created in the time window,
    each with the scenario meeting that made it."""
    who = require_app_role(request, PERMISSION)
    user = target_user(request)
    require_policy(request, who, user.id)
    world = world_of(request)
    args = _args(request)
    organizer = args.get("meetingorganizeruserid")
    if not organizer:
        raise bad_request("The parameter 'meetingOrganizerUserId' is required.")
    if organizer.lower() != user.id.lower():
        raise bad_request("meetingOrganizerUserId must name the user in the request path.")
    since = parse_time(args["startdatetime"], "startDateTime") if "startdatetime" in args else None
    until = parse_time(args["enddatetime"], "endDateTime") if "enddatetime" in args else None
    items = []
    for meeting_id in world.played():
        if world.organizer_id(meeting_id) != user.id or not world.transcript_ready(meeting_id):
            continue
        for index in range(len(world.meeting(meeting_id).transcripts)):
            made = world.transcript_created_at(meeting_id, index) or 0.0
            created = dt.datetime.fromtimestamp(made, dt.UTC)
            if (since is None or created >= since) and (until is None or created < until):
                items.append((meeting_id, transcript(request, world, meeting_id, index)))
    items.sort(key=lambda t: str(t[1]["createdDateTime"]))
    return world, items


def _args(request: web.Request) -> dict[str, str]:
    """The function's arguments; `@alias` values come from the query (`@alias=` or `alias=`)."""
    raw = request.match_info["fn"][len("getAllTranscripts(") : -1]
    out = {}
    for name, value in _ARG.findall(raw):
        text = value.strip()
        if text.startswith("'") and text.endswith("'") and len(text) >= 2:
            text = text[1:-1].replace("''", "'")
        if text.startswith("@"):
            text = request.query.get(text) or request.query.get(text[1:]) or ""
        if text:
            out[name.lower()] = text.strip("'")
    return out


async def get_all(request: web.Request) -> web.Response:
    _, items = _all(request)
    chunk, link = page(request, [item for _, item in items], top(request, 100))
    body: dict[str, Any] = {
        "@odata.context": context(request, "Collection(microsoft.graph.callTranscript)")
    }
    if link:
        body["@odata.nextLink"] = link
    body["value"] = chunk
    return web.json_response(body)


async def get_all_delta(request: web.Request) -> web.Response:
    """Transcripts that appeared since the `$deltatoken` (all of them without one)."""
    world, items = _all(request)
    now = world.clock()
    since = _delta_since(request.query.get("$deltatoken"))
    fresh = []
    for meeting_id, item in items:
        # The occurrence that made it: a series' occurrences share the item's meetingId.
        ready = world.transcript_ready_at(meeting_id)
        if ready is not None and since < ready <= now:
            fresh.append(item)
    token = base64.urlsafe_b64encode(json.dumps({"t": now}).encode()).decode()
    query = {k: v for k, v in request.query.items() if k not in ("$deltatoken", "$skiptoken")}
    query["$deltatoken"] = token
    return web.json_response(
        {
            "@odata.context": context(request, "Collection(microsoft.graph.callTranscript)"),
            "@odata.deltaLink": str(request.url.with_query(query)),
            "value": fresh,
        }
    )


def _delta_since(token: str | None) -> float:
    if token is None:
        return float("-inf")
    try:
        return float(json.loads(base64.urlsafe_b64decode(token.encode()))["t"])
    except (ValueError, KeyError, TypeError):
        raise bad_request("The $deltatoken is not valid.", code="SyncStateNotFound") from None


# -- shapes --------------------------------------------------------------------------------
def organizer_identity(world: World, meeting_id: str) -> dict[str, Any]:
    user = {"@odata.type": "#microsoft.graph.teamworkUserIdentity",
            "id": world.organizer_id(meeting_id), "displayName": None,
            "tenantId": world.tenant_id, "userIdentityType": "aadUser"}  # fmt: skip
    return {"application": None, "device": None, "user": user}


def transcript(
    request: web.Request, world: World, meeting_id: str, index: int = 0
) -> dict[str, Any]:
    """The meeting's `index`-th callTranscript; it ends a moment after it was made."""
    om_id, t_id = world.online_meeting_id(meeting_id), world.transcript_id(meeting_id, index)
    organizer = world.organizer_id(meeting_id)
    created = world.transcript_created_at(meeting_id, index) or 0.0
    url = (
        f"{origin(request)}{GRAPH_ROOT}/users/{organizer}/onlineMeetings/{om_id}/transcripts/{t_id}"
    )
    return {
        "id": t_id,
        "meetingId": om_id,
        "callId": world.call_record_id(meeting_id),
        "contentCorrelationId": world.content_correlation_id(meeting_id, index),
        "transcriptContentUrl": f"{url}/content",
        "createdDateTime": iso(created),
        "endDateTime": iso(created + 0.5),
        "meetingOrganizer": organizer_identity(world, meeting_id),
    }


def cues(vtt: str) -> list[tuple[float, float, str, str]]:
    """(start s, end s, speaker, text) of each WebVTT cue; NOTE and STYLE blocks skipped."""
    out = []
    for block in re.split(r"\r?\n\s*\r?\n", vtt.replace("\r\n", "\n")):
        lines = [line for line in block.split("\n") if line.strip()]
        at = next((i for i, line in enumerate(lines) if _TIMING.match(line.strip())), None)
        if at is None or (lines[0].startswith(("NOTE", "STYLE", "WEBVTT")) and at != 0):
            continue
        timing = _TIMING.match(lines[at].strip())
        assert timing is not None
        text = " ".join(lines[at + 1 :])
        voice = _VOICE.search(text)
        speaker = voice.group(1).strip() if voice else ""
        out.append((_seconds(timing.group(1)), _seconds(timing.group(2)), speaker,
                    _TAG.sub("", text).strip()))  # fmt: skip
    return out


def _seconds(stamp: str) -> float:
    sign = -1.0 if stamp.startswith("-") else 1.0
    total = 0.0
    for part in stamp.lstrip("-").split(":"):
        total = total * 60 + float(part)
    return sign * total


def _stamp(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    ms = round(abs(seconds) * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{sign}{h:02d}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
