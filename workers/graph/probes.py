"""One-page Graph reads that prove the app holds a permission or may read a user's meetings.

`ingest doctor` makes each once: the smallest read-only request that Graph answers only when
the permission (or the Teams application access policy) is in place. Each returns how many
items Graph sent; a refusal is raised as the GraphClient maps it (a 403 names its fix).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from core import times
from workers.graph.api import ARTIFACTS, TRANSCRIPTS, GraphApi
from workers.graph.client import GraphClient, absent

CALL_RECORDS = "CallRecords.Read.All"
USERS = "User.Read.All"
ORGANIZATION = "Organization.Read.All"
MEETINGS = "OnlineMeetings.Read.All"
# A join link no meeting has: the lookup is authorized, then finds nothing.
PROBE_JOIN_URL = "https://teams.microsoft.com/l/meetup-join/ingest-doctor-probe"


def _get(
    client: GraphClient,
    what: str,
    path: str,
    permission: str,
    user_id: str | None = None,
    page_size: int | None = None,
) -> dict[str, Any]:
    # list callRecords takes no $top, only this header
    headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size is not None else None
    return client.request(what, "GET", path, permission=permission, user_id=user_id,
                          headers=headers)  # fmt: skip


def call_records(client: GraphClient) -> int:
    """`GET /communications/callRecords` of the last day, one record at most."""
    since = times.graph(datetime.now(UTC) - timedelta(days=1))
    query = quote(f"startDateTime ge {since}", safe=":")
    page = _get(
        client,
        "listing callRecords",
        f"/communications/callRecords?$select=id&$filter={query}",
        CALL_RECORDS,
        page_size=1,
    )
    return len(page.get("value") or [])


def users(client: GraphClient) -> int:
    """`GET /users?$top=1`: one user of the directory."""
    page = _get(client, "listing users", "/users?$top=1&$select=id", USERS)
    return len(page.get("value") or [])


def organization(client: GraphClient) -> int:
    """`GET /organization`: the tenant's verified domains."""
    return len(GraphApi(client).verified_domains())


def meetings(client: GraphClient, user_id: str) -> int:
    """The user's online meetings with a join link none has (OnlineMeetings.Read.All)."""
    return 0 if GraphApi(client).meeting_by_join_url(user_id, PROBE_JOIN_URL) is None else 1


def attendance(client: GraphClient, user_id: str) -> int:
    """The attendance reports of a meeting id that does not exist: 404 once authorized."""
    meeting = base64.b64encode(f"1*{user_id}*0**19:meeting_ingestdoctor@thread.v2".encode())
    path = f"/users/{user_id}/onlineMeetings/{meeting.decode()}/attendanceReports"
    page = absent(lambda: _get(client, "listing attendance reports", path, ARTIFACTS, user_id))
    return 0 if page is None else len(page.get("value") or [])


def transcripts(client: GraphClient, user_id: str) -> int:
    """`getAllTranscripts(meetingOrganizerUserId=…)`, one transcript at most (app only)."""
    path = (
        f"/users/{user_id}/onlineMeetings/getAllTranscripts("
        f"meetingOrganizerUserId='{user_id}')?$top=1"
    )
    page = _get(client, "listing the user's transcripts", path, TRANSCRIPTS, user_id)
    return len(page.get("value") or [])
