"""Attendance reports of a played meeting: who joined, with the e-mail address Graph knows."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from emulators.graph.data import (
    both,
    collection,
    context,
    expansions,
    iso,
    meeting_of,
    options_of,
    page,
    select,
    top,
)
from emulators.graph.errors import not_found
from emulators.graph.users import display_name, guest_id
from emulators.graph.world import World
from emulators.scenario import Participant

PERMISSION = "OnlineMeetingArtifact.Read.All"  # the app role and the delegated scope alike
REPORTS = "onlineMeetings/{meeting}/attendanceReports"


def add_routes(app: web.Application) -> None:
    both(app, REPORTS, list_reports)
    both(app, REPORTS + "/{report}", get_report)
    both(app, REPORTS + "/{report}/attendanceRecords", list_records)


def _meeting(request: web.Request) -> tuple[World, tuple[str, ...], str]:
    return meeting_of(request, PERMISSION)


def _has_report(world: World, meeting_id: str) -> bool:
    """A report exists once the meeting was played, unless attendance reports were turned off
    for it (a scenario's `attendance_report: false`): "The policies that apply to the Teams
    attendance report also extend to Microsoft Graph" (Graph, meetingAttendanceReport
    resource type), and a Teams meeting policy or the organizer can turn the report off."""
    return world.played_at(meeting_id) is not None and world.meeting(meeting_id).attendance_report


def _report_of(request: web.Request, world: World, occurrences: tuple[str, ...]) -> str:
    """The occurrence whose report `{report}` is; 404 unless it exists (once it ended)."""
    wanted = request.match_info["report"]
    for meeting_id in occurrences:
        if _has_report(world, meeting_id) and wanted == report_id(meeting_id):
            return meeting_id
    raise not_found("The requested attendance report was not found.", code="NotFound")


async def list_reports(request: web.Request) -> web.Response:
    """One report per played occurrence (a recurring series has several: "Each time an
    online meeting or a virtual event ends, an attendance report is generated for that
    session"), newest first; the list leaves the records out."""
    world, occurrences, prefix = _meeting(request)
    played = [m for m in occurrences if _has_report(world, m)]
    played.sort(key=lambda m: world.meeting(m).start, reverse=True)
    reports = [report(world, m) for m in played]
    fragment = f"{prefix}/attendanceReports"
    return web.json_response({"@odata.context": context(request, fragment), "value": reports})


async def get_report(request: web.Request) -> web.Response:
    world, occurrences, prefix = _meeting(request)
    meeting_id = _report_of(request, world, occurrences)
    body = select(request, report(world, meeting_id))
    if "attendancerecords" in expansions(request):
        body["attendanceRecords@odata.context"] = context(
            request, f"{prefix}/attendanceReports('{report_id(meeting_id)}')/attendanceRecords"
        )
        # Inline records page like participants_v2 do: the rest from the records route.
        path = f"{request.path}/attendanceRecords"
        size = options_of(request).attendance_page
        chunk, link = page(request, records(world, meeting_id), size, path=path)
        if link:
            body["attendanceRecords@odata.nextLink"] = link
        body["attendanceRecords"] = chunk
    fragment = f"{prefix}/attendanceReports/$entity"
    return web.json_response({"@odata.context": context(request, fragment)} | body)


async def list_records(request: web.Request) -> web.Response:
    """Pages of `attendance_page` records with `@odata.nextLink`; the route "supports the
    OData query parameters", so `$top` chooses a smaller page."""
    world, occurrences, prefix = _meeting(request)
    meeting_id = _report_of(request, world, occurrences)
    fragment = f"{prefix}/attendanceReports('{report_id(meeting_id)}')/attendanceRecords"
    size = top(request, options_of(request).attendance_page)
    return collection(request, fragment, records(world, meeting_id), size)


# -- shapes --------------------------------------------------------------------------------
def report_id(meeting_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"attendanceReport:{meeting_id}"))


def report(world: World, meeting_id: str) -> dict[str, Any]:
    m = world.meeting(meeting_id)
    return {
        "id": report_id(meeting_id),
        "totalParticipantCount": len(_people(world, meeting_id)),
        "meetingStartDateTime": iso(m.start),
        "meetingEndDateTime": iso(m.end),
        "externalEventInformation": [],
    }


def _key(world: World, person: Participant, index: int) -> str:
    """People are one record each: by directory id, else phone number, else guest name."""
    return world.person_id(person) or person.phone or f"guest:{person.guest}"


def _people(world: World, meeting_id: str) -> dict[str, list[int]]:
    """Each distinct person → the indexes of their devices, in joining order."""
    people: dict[str, list[int]] = {}
    for index, person in enumerate(world.meeting(meeting_id).participants):
        people.setdefault(_key(world, person, index), []).append(index)
    return people


def records(world: World, meeting_id: str) -> list[dict[str, Any]]:
    """One attendanceRecord per person who joined, the organizer included."""
    m = world.meeting(meeting_id)
    out = []
    for key, indexes in _people(world, meeting_id).items():
        person = m.participants[indexes[0]]
        spans = [world.joined(meeting_id, i) for i in indexes]
        intervals = [
            {"joinDateTime": iso(a), "leaveDateTime": iso(b), "durationInSeconds": int(b - a)}
            for a, b in spans
        ]
        # Devices overlap: the person attended from the first join to the last leave.
        total = int(max(b for _, b in spans) - min(a for a, _ in spans))
        ident_id = world.person_id(person)
        if ident_id is None:
            ident_id = (
                guest_id(meeting_id, indexes[0])
                if person.kind == "guest"
                else str(uuid.uuid5(uuid.NAMESPACE_URL, f"phone:{key}"))
            )
        out.append(
            {
                "id": ident_id,
                "emailAddress": _email(person),
                "totalAttendanceInSeconds": total,
                "role": _role(person, m.organizer),
                "registrationId": None,
                "identity": {
                    "@odata.type": "#microsoft.graph.communicationsUserIdentity",
                    "id": ident_id,
                    "displayName": display_name(world, person),
                    "tenantId": None,  # Graph leaves it empty here, even for home users
                },
                "attendanceIntervals": intervals,
                "externalRegistrationInformation": None,
            }
        )
    return out


def _email(person: Participant) -> str:
    if person.kind == "user":
        return person.upn or ""
    if person.kind == "external":
        return person.email or ""
    return ""  # dial-ins and anonymous guests have none


def _role(person: Participant, organizer: str) -> str:
    if person.kind == "user":
        return "Organizer" if person.upn == organizer else "Presenter"
    return "Attendee"
