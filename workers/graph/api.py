"""The Graph requests the pipeline makes, each returning Graph's JSON as plain dicts.

Working on JSON (rather than SDK models) keeps the rest of the pipeline testable with the
documented payloads, and keeps fields the SDK models lack (`tenantId` on userIdentity).
Every method is one request unless it says otherwise; page sizes and filters live here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from core import times
from core.exceptions import UpstreamPermanent
from workers.graph.client import GraphClient, absent, get_json

MAX_PAGES = 50  # participants_v2 pages hold 130; 50 pages is far beyond any meeting
ARTIFACTS = "OnlineMeetingArtifact.Read.All"  # attendance reports, delegated and app alike
TRANSCRIPTS = "OnlineMeetingTranscript.Read.All"  # delegated and app alike
FILES = "Files.Read"  # delegated only: the organizer's own OneDrive
RECORDINGS = "Recordings"  # the OneDrive folder Teams saves a meeting's recording in
RECORDINGS_PAGE = 200  # OneDrive's default page of children
RECORDING_FIELDS = ("id", "name", "webUrl", "createdDateTime", "file", "size")
# A delegated scope -> the application permission that reads the same for any user.
_APP_ROLE = {"OnlineMeetings.Read": "OnlineMeetings.Read.All"}
T = TypeVar("T")


async def _rest(sdk: Any, builder: Any, first: dict[str, Any], key: str = "") -> list[Any]:
    """Every item of a collection whose first page is `first`: its `value` (or the expanded
    `key`) and each further page, following `@odata.nextLink` (one request a page)."""
    items = list(first.get(key or "value") or [])
    link = first.get(f"{key}@odata.nextLink" if key else "@odata.nextLink")
    for _ in range(MAX_PAGES):
        if not link:
            break
        page = await get_json(sdk, builder.with_url(link))
        items.extend(page.get("value") or [])
        link = page.get("@odata.nextLink")
    return items


@dataclass
class _Query:
    """OData query options for any request builder, named as the SDK's generated ones are."""

    expand: list[str] | None = None
    filter: str | None = None
    select: list[str] | None = None

    def get_query_parameter(self, original_name: str) -> str:
        return f"%24{original_name}"


def _config(**query: Any) -> Any:
    from kiota_abstractions.base_request_configuration import RequestConfiguration

    config: Any = RequestConfiguration()
    if query:
        config.query_parameters = _Query(**query)
    return config


class GraphApi:
    """The pipeline's view of Graph: resources as JSON, 404 as None where absence is normal.

    `delegated(organizer_id)` gives a connected organizer's own client (DESIGN §6): their
    meetings, attendance and transcripts are read with it; everything else with the app's.
    """

    def __init__(
        self,
        client: GraphClient,
        delegated: Callable[[str], GraphClient | None] | None = None,
    ) -> None:
        self.client = client
        self._delegated = delegated
        self._chosen: dict[str, GraphClient] = {}

    def client_for(self, organizer_id: str) -> GraphClient:
        """The organizer's delegated client, else the app's; chosen once per GraphApi (a job)."""
        key = organizer_id.lower()
        if key not in self._chosen:
            mine = self._delegated(organizer_id) if self._delegated is not None else None
            self._chosen[key] = mine or self.client
        return self._chosen[key]

    def _as(
        self, organizer_id: str, what: str, request: Callable[[Any], Awaitable[T]], scope: str
    ) -> T:
        """A request about the organizer's meetings, with their delegated client (`scope`) or
        the app's (the `.All` application permission, under the Teams access policy)."""
        client = self.client_for(organizer_id)
        permission = scope if client is not self.client else _APP_ROLE.get(scope, scope)
        return client.call(what, request, permission, organizer_id)

    # callRecords -------------------------------------------------------------------------
    def call_record(self, call_record_id: str) -> dict[str, Any] | None:
        """The callRecord with `participants_v2` expanded and every page of it followed."""

        async def get(sdk: Any) -> dict[str, Any]:
            item = sdk.communications.call_records.by_call_record_id(call_record_id)
            record = await get_json(sdk, item, _config(expand=["participants_v2"]))
            people = await _rest(sdk, item.participants_v2, record, "participants_v2")
            record.pop("participants_v2@odata.nextLink", None)
            record["participants_v2"] = people
            return record

        return absent(
            lambda: self.client.call(
                f"reading callRecord {call_record_id}", get, "CallRecords.Read.All"
            )
        )

    # online meetings ---------------------------------------------------------------------
    def meeting_by_join_url(self, organizer_id: str, join_web_url: str) -> dict[str, Any] | None:
        """The organizer's online meeting with this join link, or None."""
        escaped = join_web_url.replace("'", "''")

        async def get(sdk: Any) -> dict[str, Any]:
            builder = sdk.users.by_user_id(organizer_id).online_meetings
            return await get_json(sdk, builder, _config(filter=f"JoinWebUrl eq '{escaped}'"))

        page = absent(lambda: self._as(organizer_id, "finding the online meeting by joinWebUrl",
                                       get, "OnlineMeetings.Read"))  # fmt: skip
        if page is None:
            return None
        meetings = page.get("value") or []
        return meetings[0] if meetings else None

    def meeting(self, organizer_id: str, meeting_id: str) -> dict[str, Any] | None:
        async def get(sdk: Any) -> dict[str, Any]:
            builder = sdk.users.by_user_id(organizer_id).online_meetings
            return await get_json(sdk, builder.by_online_meeting_id(meeting_id))

        return absent(
            lambda: self._as(organizer_id, "reading the online meeting", get, "OnlineMeetings.Read")
        )

    def attendance(
        self, organizer_id: str, meeting_id: str, start: datetime | None, end: datetime | None
    ) -> dict[str, Any] | None:
        """The attendance report for this occurrence, with its records (two requests), or None.

        A recurring meeting has one report per session: pick the one overlapping start..end,
        else the latest.
        """

        def meeting_builder(sdk: Any) -> Any:
            return sdk.users.by_user_id(organizer_id).online_meetings.by_online_meeting_id(
                meeting_id
            )

        async def listing(sdk: Any) -> dict[str, Any]:
            return await get_json(sdk, meeting_builder(sdk).attendance_reports)

        listed = absent(
            lambda: self._as(organizer_id, "listing attendance reports", listing, ARTIFACTS)
        )
        if listed is None:
            return None
        reports = listed.get("value") or []
        chosen = _pick_report(reports, start, end)
        if chosen is None:
            return None
        report_id = str(chosen["id"])

        async def one(sdk: Any) -> dict[str, Any]:
            builder = meeting_builder(sdk).attendance_reports.by_meeting_attendance_report_id(
                report_id
            )
            report = await get_json(sdk, builder, _config(expand=["attendanceRecords"]))
            records = await _rest(sdk, builder.attendance_records, report, "attendanceRecords")
            report.pop("attendanceRecords@odata.nextLink", None)
            report["attendanceRecords"] = records
            return report

        return absent(
            lambda: self._as(organizer_id, "reading the attendance report", one, ARTIFACTS)
        )

    # transcripts -------------------------------------------------------------------------
    def transcripts(self, organizer_id: str, meeting_id: str) -> list[dict[str, Any]]:
        """Every transcript of the meeting (of every occurrence, for a series): one request a
        page; Graph lists the newest first."""

        async def get(sdk: Any) -> list[Any]:
            builder = sdk.users.by_user_id(organizer_id).online_meetings.by_online_meeting_id(
                meeting_id
            )
            return await _rest(sdk, builder.transcripts, await get_json(sdk, builder.transcripts))

        listed = absent(lambda: self._as(organizer_id, "listing transcripts", get, TRANSCRIPTS))
        return [t for t in listed or [] if isinstance(t, dict)]

    def transcript_content(
        self, organizer_id: str, meeting_id: str, transcript_id: str
    ) -> str | None:
        """The WebVTT text (a metered download), or None while Graph says 404."""

        async def get(sdk: Any) -> bytes | None:
            builder = sdk.users.by_user_id(organizer_id).online_meetings.by_online_meeting_id(
                meeting_id
            )
            config = _config()
            config.headers.add("Accept", "text/vtt")
            content = builder.transcripts.by_call_transcript_id(transcript_id).content
            data: bytes | None = await content.get(request_configuration=config)
            return data

        data = absent(
            lambda: self._as(organizer_id, "downloading the transcript", get, TRANSCRIPTS)
        )
        if data is None:
            return None
        return data.decode("utf-8-sig", errors="replace")

    # recordings ----------------------------------------------------------------------------
    def recording_files(self, organizer_id: str) -> list[dict[str, Any]] | None:
        """The first page of the organizer's OneDrive `Recordings` folder, as metadata only
        (one request); [] when the folder does not exist; None, without a request, when the
        organizer did not connect: `Files.Read` is delegated only (DESIGN §6)."""
        client = self.client_for(organizer_id)
        if client is self.client:
            return None

        async def get(sdk: Any) -> dict[str, Any]:
            # Path addressing (`root:/Recordings:`) has no generated builder: the raw URL.
            base = str(sdk.request_adapter.base_url).rstrip("/")
            url = (
                f"{base}/users/{quote(organizer_id, safe='')}/drive/root:/{RECORDINGS}:/children"
                f"?$select={','.join(RECORDING_FIELDS)}&$top={RECORDINGS_PAGE}"
            )
            return await get_json(sdk, sdk.users.by_user_id(organizer_id).drive.with_url(url))

        page = absent(
            lambda: client.call("listing the OneDrive Recordings folder", get, FILES, organizer_id)
        )
        if page is None:  # no Recordings folder: nothing was ever recorded
            return []
        return [item for item in page.get("value") or [] if isinstance(item, dict)]

    # directory ---------------------------------------------------------------------------
    def user(self, upn_or_id: str) -> dict[str, Any] | None:
        async def get(sdk: Any) -> dict[str, Any]:
            config = _config(select=["id", "userPrincipalName", "displayName", "mail"])
            return await get_json(sdk, sdk.users.by_user_id(upn_or_id), config)

        return absent(lambda: self.client.call(f"reading user {upn_or_id}", get, "User.Read.All"))

    def verified_domains(self) -> list[str]:
        """The tenant's verified domains (`GET /organization`)."""

        async def get(sdk: Any) -> dict[str, Any]:
            return await get_json(sdk, sdk.organization)

        orgs = self.client.call(
            "reading the organization's domains", get, "Organization.Read.All"
        ).get("value")
        orgs = orgs or []
        names = [
            str(d.get("name"))
            for org in orgs
            for d in (org.get("verifiedDomains") or [])
            if isinstance(d, dict) and d.get("name")
        ]
        if not names:
            raise UpstreamPermanent(
                "Graph returned no verified domains for the tenant: set INTERNAL_DOMAINS"
            )
        return names


def _pick_report(
    reports: list[dict[str, Any]], start: datetime | None, end: datetime | None
) -> dict[str, Any] | None:
    def span(report: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
        return times.parse(report.get("meetingStartDateTime")), times.parse(
            report.get("meetingEndDateTime")
        )

    candidates = [r for r in reports if isinstance(r, dict) and r.get("id")]
    if not candidates:
        return None
    if start is not None and end is not None:
        slack = timedelta(minutes=5)
        for report in candidates:
            r_start, r_end = span(report)
            if r_start and r_end and r_start <= end + slack and r_end >= start - slack:
                return report
    floor = datetime.min.replace(tzinfo=UTC)
    return max(candidates, key=lambda r: span(r)[0] or floor)


def pages(first: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The items of one collection page (helper for callers that page themselves)."""
    yield from first.get("value") or []
