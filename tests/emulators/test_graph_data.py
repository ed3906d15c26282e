"""The Graph emulator's data routes, driven by msgraph-sdk over azure-identity where it can."""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.identity import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core import GraphClientFactory

from emulators.graph.data import OPTIONS_KEY
from emulators.tls import client_context
from tests.emulators.graph_harness import TENANT, Harness, start_emulator

# msgraph-sdk's generated builders warn, as they are imported, about their own deprecated
# classes: not ours to fix, and not what these tests are about.
pytestmark = [
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
]

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GET_ALL = (
    "get_all_transcriptsmeeting_organizer_user_id_meeting_organizer_user_id"
    "_with_start_date_time_with_end_date_time"
)
ALICE = "11111111-aaaa-4bbb-8ccc-000000000001"
BOB = "11111111-aaaa-4bbb-8ccc-000000000002"
OTHER_TENANT = "bbbbbbbb-1111-2222-3333-444444444444"
VTT = (
    "WEBVTT\n\nNOTE made by Teams\n\n1\n00:00:00.000 --> 00:00:03.500\n"
    "<v Alice Adams>Hello Carol,\n"
    "thanks for joining.</v>\n\n00:00:04.000 --> 00:00:06.000\n<v Carol Diaz>Glad to be here.</v>\n"
)
CROWD = [{"email": f"person{i:03d}@fabrikam.com"} for i in range(136)]
SCENARIO: dict[str, Any] = {
    "tenant": {"id": TENANT, "domains": ["contoso.com"]},
    "users": [
        {"id": ALICE, "upn": "alice@contoso.com", "name": "Alice Adams", "eci": True},
        {"id": BOB, "upn": "bob@contoso.com", "name": "Bob Brown", "eci": True},
    ],
    "meetings": [
        {"id": "m-1", "subject": "Renewal", "organizer": "alice@contoso.com",
         "start": "2026-11-20T15:00:00Z", "end": "2026-11-20T15:30:00Z",
         "participants": [
             {"upn": "bob@contoso.com"},
             {"email": "carol@fabrikam.com", "name": "Carol Diaz", "tenant": OTHER_TENANT},
             {"email": "carol@fabrikam.com", "name": "Carol Diaz", "tenant": OTHER_TENANT},
             {"email": "ken@wideworldimporters.com", "name": "Ken Tanaka", "tenant": TENANT},
             {"phone": "+14255550100"}, {"guest": "Visitor"}],
         "transcript": VTT, "transcript_ready_after_s": 30, "recording": True},
        {"id": "m-2", "subject": "Town hall", "organizer": "bob@contoso.com",
         "start": "2026-11-21T15:00:00Z", "end": "2026-11-21T16:00:00Z", "participants": CROWD,
         "transcript": "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v Bob Brown>Hi.</v>\n"},
        {"id": "m-3", "subject": "Follow-up", "organizer": "alice@contoso.com",
         "start": "2026-11-22T15:00:00Z", "end": "2026-11-22T15:30:00Z",
         "transcript": "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v Alice Adams>Bye.</v>\n",
         "allow_recording": False},
    ],
}  # fmt: skip


class StaticToken:
    """A credential handing out one (delegated) token, as a signed-in user's cache would."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        pass


@pytest.fixture
def g(tmp_path: Path) -> Iterator[Harness]:
    bg, harness = start_emulator(tmp_path / "ca", scenario=SCENARIO)
    try:
        yield harness
    finally:
        bg.close()


@pytest.fixture
async def clients(g: Harness) -> AsyncIterator[list[Any]]:
    """What `sdk` opens (HTTP clients, credentials), closed after the test."""
    made: list[Any] = []
    yield made
    for thing in reversed(made):
        if hasattr(thing, "aclose"):
            await thing.aclose()
        else:
            thing.close()


def sdk(g: Harness, made: list[Any], token: str | None = None) -> GraphServiceClient:
    """The product's client: app credentials by default, else a fixed (delegated) token."""
    credential: Any = (
        StaticToken(token)
        if token
        else ClientSecretCredential(TENANT, "emulator-app", "emulator-secret", authority=g.url,
                                    disable_instance_discovery=True, connection_verify=g.ca_file)
    )  # fmt: skip
    made.append(credential)
    raw = httpx.AsyncClient(verify=ssl.create_default_context(cafile=g.ca_file))
    # msgraph_core swaps in a transport without aclose(): close the real pool too.
    made += [raw._transport, raw]
    http = GraphClientFactory.create_with_default_middleware(client=raw)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE])
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{g.url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def user_token(g: Harness, uid: str, scopes: list[str]) -> str:
    user = g.state.world.user(uid)
    assert user is not None
    return g.state.issuer.user_token(g.url, "emulator-app", user.id, user.upn, user.name, scopes)[0]


def app_token_with(g: Harness, *roles: str) -> str:
    """An app token holding exactly `roles` (the emulator's own grants only some)."""
    claims = g.state.issuer.verify(g.app_token())
    return g.state.issuer.key.sign({**claims, "roles": list(roles)})


def get(g: Harness, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or g.app_token()}", **kwargs.pop("headers", {})}
    with httpx.Client(verify=client_context(g.ca_dir)) as c:
        return c.get(f"{g.url}{path}" if path.startswith("/") else path, headers=headers, **kwargs)


@dataclass
class Query:
    """OData query options as the SDK's generated query parameter classes carry them."""

    expand: list[str] | None = None
    filter: str | None = None
    top: int | None = None
    meeting_organizer_user_id: str | None = None

    def get_query_parameter(self, name: str) -> str:
        return "meetingOrganizerUserId" if name == "meeting_organizer_user_id" else f"%24{name}"


def config(**query: Any) -> RequestConfiguration[Any]:
    rc: RequestConfiguration[Any] = RequestConfiguration()
    rc.query_parameters = Query(**query)
    return rc


def meeting_path(g: Harness, meeting: str, user: str | None = None) -> str:
    world = g.state.world
    uid = user or world.organizer_id(meeting)
    return f"/v1.0/users/{uid}/onlineMeetings/{world.online_meeting_id(meeting)}"


class TestCallRecords:
    """A callRecord exists once its meeting is played and shows who joined as Graph does."""

    async def test_404_before_play_then_record(self, g: Harness, clients: list[Any]) -> None:
        client, world = sdk(g, clients), g.state.world
        item = client.communications.call_records.by_call_record_id(world.call_record_id("m-1"))
        with pytest.raises(ODataError) as err:
            await item.get()
        assert err.value.response_status_code == 404
        world.play(["m-1"])
        record = await item.get()
        assert record is not None and record.version == 1 and record.type.value == "groupCall"
        assert record.join_web_url == world.join_web_url("m-1")
        assert record.start_date_time.isoformat() == "2026-11-20T15:00:00+00:00"
        assert record.organizer_v2.identity.user.id == ALICE

    async def test_identities_per_kind(self, g: Harness, clients: list[Any]) -> None:
        g.state.world.play(["m-1"])
        client = sdk(g, clients)
        item = client.communications.call_records.by_call_record_id(
            g.state.world.call_record_id("m-1")
        )
        record = await item.get(request_configuration=config(expand=["participants_v2"]))
        people = record.participants_v2
        assert len(people) == 7 and len({p.id for p in people}) == 7  # organizer added, Carol twice
        users = [p.identity.user for p in people if p.identity.user]
        extra = [u.additional_data for u in users]
        upns = [u.user_principal_name for u in users]
        assert users[0].id == ALICE and upns[:2] == ["alice@contoso.com", "bob@contoso.com"]
        assert {k: str(v) for k, v in extra[1].items()} == {"tenantId": TENANT}
        assert [u.display_name for u in users[2:4]] == ["External user"] * 2
        assert users[2].id == users[3].id and str(extra[2]["tenantId"]) == OTHER_TENANT
        assert upns[2] is None and upns[3] is None
        assert users[4].display_name == "Ken Tanaka" and str(extra[4]["tenantId"]) == TENANT
        assert upns[4] == "ken_wideworldimporters.com#EXT#@contoso.onmicrosoft.com"
        assert people[5].identity.phone.id == "+14255550100"
        # Anonymous visitors as Graph shows them (reference/participants.md §3, docs #8196:
        # "guest: null" and "user.id: teamsvisitor:…", displayName and tenantId null).
        visitor = people[6].identity
        assert visitor.guest is None and visitor.user.display_name is None
        assert re.fullmatch(r"teamsvisitor:[0-9a-f]{32}", visitor.user.id)
        assert str(visitor.user.additional_data.get("tenantId")) == "None"

    async def test_participants_page_at_130(self, g: Harness, clients: list[Any]) -> None:
        g.state.world.play(["m-2"])
        item = sdk(g, clients).communications.call_records.by_call_record_id(
            g.state.world.call_record_id("m-2")
        )
        record = await item.get(request_configuration=config(expand=["participants_v2"]))
        assert len(record.participants_v2) == 130
        link = record.additional_data["participants_v2@odata.nextLink"]
        rest = await item.participants_v2.with_url(link).get()
        assert len(rest.value) == 7 and rest.odata_next_link is None
        ids = {p.id for p in record.participants_v2} | {p.id for p in rest.value}
        assert len(ids) == 137
        # "Prefer: odata.maxpagesize={x}: Specifies a preferred integer {x} page size for
        # paginated results" — and the route lists `$select` as its only query option, so a
        # `$top` leaves the page at its maximum ("The maximum page size for participants is
        # 130 entries"; Graph "List participants_v2").
        prefer: RequestConfiguration[Any] = RequestConfiguration()
        prefer.headers.add("Prefer", "odata.maxpagesize=50")
        pages, page = [], await item.participants_v2.get(request_configuration=prefer)
        while True:
            pages.append(len(page.value))
            if not page.odata_next_link:
                break
            more = item.participants_v2.with_url(page.odata_next_link)
            page = await more.get(request_configuration=prefer)
        assert pages == [50, 50, 37]
        ignored = await item.participants_v2.get(request_configuration=config(top=50))
        assert len(ignored.value) == 130

    async def test_list_filters_and_pages(self, g: Harness, clients: list[Any]) -> None:
        g.app[OPTIONS_KEY].call_records_page = 2
        g.state.world.play()
        records = sdk(g, clients).communications.call_records
        page = await records.get()
        assert len(page.value) == 2 and page.odata_next_link
        rest = await records.with_url(page.odata_next_link).get()
        assert len(rest.value) == 1 and rest.odata_next_link is None
        query = "startDateTime ge 2026-11-21T00:00:00Z and startDateTime lt 2026-11-22T00:00:00Z"
        only = await records.get(request_configuration=config(filter=query))
        assert [r.id for r in only.value] == [g.state.world.call_record_id("m-2")]

    async def test_sessions_with_segments(self, g: Harness) -> None:
        g.state.world.play(["m-1"])
        cid = g.state.world.call_record_id("m-1")
        body = get(g, f"/v1.0/communications/callRecords/{cid}",
                   params={"$expand": "sessions($expand=segments)"}).json()  # fmt: skip
        assert len(body["sessions"]) == 7 and len(body["sessions"][0]["segments"]) == 1
        assert body["sessions"][1]["caller"]["associatedIdentity"]["id"] == BOB

    def test_needs_the_app_role(self, g: Harness) -> None:
        g.state.world.play(["m-1"])
        cid = g.state.world.call_record_id("m-1")
        token = user_token(g, ALICE, ["CallRecords.Read.All"])
        assert get(g, f"/v1.0/communications/callRecords/{cid}", token).status_code == 403
        assert get(g, f"/v1.0/communications/callRecords/{cid}", "forged").status_code == 401


class TestOnlineMeetings:
    """The organizer's meeting is found by its joinWebUrl; invitees, not dial-ins, are listed."""

    async def test_find_by_join_url_and_get(self, g: Harness, clients: list[Any]) -> None:
        world = g.state.world
        meetings = sdk(g, clients).users.by_user_id(ALICE).online_meetings
        url = world.join_web_url("m-1")
        found = await meetings.get(request_configuration=config(filter=f"JoinWebUrl eq '{url}'"))
        assert [m.id for m in found.value] == [world.online_meeting_id("m-1")]
        meeting = found.value[0]
        assert (
            meeting.subject == "Renewal"
            and meeting.participants.organizer.upn == "alice@contoso.com"
        )
        assert [a.upn for a in meeting.participants.attendees] == [
            "bob@contoso.com", "carol@fabrikam.com", "ken@wideworldimporters.com"]  # fmt: skip
        one = await meetings.by_online_meeting_id(world.online_meeting_id("m-1")).get()
        assert one.join_web_url == url
        # Recording is on unless the meeting's options turned it off; recorded or not, the
        # onlineMeeting does not say (recordAutomatically is an option, off by default).
        assert (one.allow_recording, one.allow_transcription, one.record_automatically) == (
            True, True, False)  # fmt: skip
        off = await meetings.by_online_meeting_id(world.online_meeting_id("m-3")).get()
        assert off.allow_recording is False
        bobs = sdk(g, clients).users.by_user_id(BOB).online_meetings
        none = await bobs.get(request_configuration=config(filter=f"JoinWebUrl eq '{url}'"))
        assert none.value == []
        with pytest.raises(ODataError) as err:
            await bobs.by_online_meeting_id(world.online_meeting_id("m-1")).get()
        assert err.value.response_status_code == 404

    async def test_delegated_only_for_oneself(self, g: Harness, clients: list[Any]) -> None:
        world = g.state.world
        om = world.online_meeting_id("m-1")
        token = user_token(g, ALICE, ["OnlineMeetings.Read"])
        alice = sdk(g, clients, token)
        assert await alice.users.by_user_id(ALICE).online_meetings.by_online_meeting_id(om).get()
        # The SDK's `.me` needs a URL-rewriting middleware; the route itself is /me.
        assert get(g, f"/v1.0/me/onlineMeetings/{om}", token).json()["id"] == om
        assert get(g, f"/v1.0/me/onlineMeetings/{om}").status_code == 400  # an app has no "me"
        bob = sdk(g, clients, user_token(g, BOB, ["OnlineMeetings.Read"]))
        with pytest.raises(ODataError) as err:
            await bob.users.by_user_id(ALICE).online_meetings.by_online_meeting_id(om).get()
        assert err.value.response_status_code == 403

    def test_filter_is_required(self, g: Harness) -> None:
        resp = get(g, f"/v1.0/users/{ALICE}/onlineMeetings")
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "BadRequest"


class TestAttendance:
    """A played meeting has one report; its records hold one per person with their e-mail."""

    async def test_report_and_records(self, g: Harness, clients: list[Any]) -> None:
        world = g.state.world
        meeting = (
            sdk(g, clients)
            .users.by_user_id(ALICE)
            .online_meetings.by_online_meeting_id(world.online_meeting_id("m-1"))
        )
        assert (await meeting.attendance_reports.get()).value == []
        world.play(["m-1"])
        reports = (await meeting.attendance_reports.get()).value
        assert len(reports) == 1 and reports[0].total_participant_count == 6
        assert reports[0].attendance_records in (None, [])
        report = await meeting.attendance_reports.by_meeting_attendance_report_id(
            reports[0].id
        ).get(request_configuration=config(expand=["attendanceRecords"]))
        records = report.attendance_records
        assert [r.email_address for r in records] == [
            "alice@contoso.com", "bob@contoso.com", "carol@fabrikam.com",
            "ken@wideworldimporters.com", "", ""]  # fmt: skip
        assert [r.role for r in records][:3] == ["Organizer", "Presenter", "Attendee"]
        carol = records[2]
        assert len(carol.attendance_intervals) == 2 and carol.total_attendance_in_seconds == 1760
        assert carol.identity.display_name == "Carol Diaz"
        again = await meeting.attendance_reports.by_meeting_attendance_report_id(
            reports[0].id
        ).attendance_records.get()
        assert len(again.value) == 6

    def test_other_users_delegated_token_is_403(self, g: Harness) -> None:
        g.state.world.play(["m-1"])
        path = meeting_path(g, "m-1") + "/attendanceReports"
        bob = user_token(g, BOB, ["OnlineMeetingArtifact.Read.All"])
        assert get(g, path, bob).status_code == 403
        alice = user_token(g, ALICE, ["OnlineMeetingArtifact.Read.All"])
        assert len(get(g, path, alice).json()["value"]) == 1


class TestTranscripts:
    """A transcript 404s until ready; its WebVTT comes by Accept or $format and is counted."""

    async def test_ready_after_delay_then_content(self, g: Harness, clients: list[Any]) -> None:
        world = g.state.world
        meeting = (
            sdk(g, clients)
            .users.by_user_id(ALICE)
            .online_meetings.by_online_meeting_id(world.online_meeting_id("m-1"))
        )
        item = meeting.transcripts.by_call_transcript_id(world.transcript_id("m-1"))
        world.play(["m-1"])
        assert (await meeting.transcripts.get()).value == []
        with pytest.raises(ODataError) as err:
            await item.get()
        assert err.value.response_status_code == 404
        g.state.clock.advance(30)
        listed = (await meeting.transcripts.get()).value
        assert [t.id for t in listed] == [world.transcript_id("m-1")]
        meta = await item.get()
        assert meta.meeting_id == world.online_meeting_id("m-1")
        assert meta.call_id == world.call_record_id("m-1")
        assert meta.meeting_organizer.user.id == ALICE
        rc: RequestConfiguration[Any] = RequestConfiguration()
        rc.headers.add("Accept", "text/vtt")
        assert (await item.content.get(request_configuration=rc)).decode() == VTT
        by_format = await item.content.with_url(
            meta.transcript_content_url + "?$format=text/vtt"
        ).get()
        assert by_format.decode() == VTT
        assert world.transcript_content_downloads == {"m-1": 2}

    def test_metadata_content_and_headers(self, g: Harness) -> None:
        world = g.state.world
        world.play(["m-1"])
        g.state.clock.advance(30)
        base = meeting_path(g, "m-1") + f"/transcripts/{world.transcript_id('m-1')}"
        resp = get(g, base + "/content", params={"$format": "text/vtt"})
        assert resp.headers["Content-Type"].startswith("text/vtt") and resp.text == VTT
        meta = get(g, base + "/metadataContent")
        cues = [json.loads(line) for line in meta.text.splitlines() if line.startswith("{")]
        assert cues[0] == {"startDateTime": "2026-11-20T15:00:00Z",
                           "endDateTime": "2026-11-20T15:00:03.5000000Z",
                           "speakerName": "Alice Adams",
                           "spokenText": "Hello Carol, thanks for joining.",
                           "spokenLanguage": "en-us"}  # fmt: skip
        assert cues[1]["speakerName"] == "Carol Diaz"
        assert world.transcript_content_downloads["m-1"] == 2
        bob = user_token(g, BOB, ["OnlineMeetingTranscript.Read.All"])
        assert get(g, base + "/content", bob).status_code == 403

    def test_communications_url_of_notifications(self, g: Harness) -> None:
        world = g.state.world
        world.play(["m-1"])
        g.state.clock.advance(30)
        om, tid = world.online_meeting_id("m-1"), world.transcript_id("m-1")
        base = f"/v1.0/communications/onlineMeetings/{om}/transcripts"
        assert [t["id"] for t in get(g, base).json()["value"]] == [tid]
        assert get(g, f"{base}/{tid}/content").text == VTT
        assert world.transcript_content_downloads == {"m-1": 1}
        assert get(g, "/v1.0/communications/onlineMeetings/bm9wZQ/transcripts").status_code == 404

    async def test_get_all_transcripts_and_delta(self, g: Harness, clients: list[Any]) -> None:
        world = g.state.world
        world.play(["m-1", "m-3"])
        g.state.clock.advance(31)
        fn = f"getAllTranscripts(meetingOrganizerUserId='{ALICE}')"
        listed = get(g, f"/v1.0/users/{ALICE}/onlineMeetings/{fn}").json()["value"]
        assert {t["id"] for t in listed} == {world.transcript_id("m-1"), world.transcript_id("m-3")}
        builder = sdk(g, clients).users.by_user_id(ALICE).online_meetings
        get_all = getattr(builder, GET_ALL)  # the SDK's own name for the function
        by_sdk = await get_all.get(request_configuration=config(meeting_organizer_user_id=ALICE))
        assert len(by_sdk.value) == 2
        first = get(g, f"/v1.0/users/{ALICE}/onlineMeetings/{fn}/delta").json()
        assert len(first["value"]) == 2
        second = get(g, first["@odata.deltaLink"]).json()
        assert second["value"] == [] and second["@odata.deltaLink"]
        g.state.clock.advance(1)
        world.play(["m-3"])  # a new transcript of the same meeting
        third = get(g, second["@odata.deltaLink"]).json()
        assert [t["id"] for t in third["value"]] == [world.transcript_id("m-3")]

    def test_get_all_needs_organizer_and_app(self, g: Harness) -> None:
        base = f"/v1.0/users/{ALICE}/onlineMeetings/getAllTranscripts"
        assert get(g, base + "()").status_code == 400
        token = user_token(g, ALICE, ["OnlineMeetingTranscript.Read.All"])
        assert get(g, base + f"(meetingOrganizerUserId='{ALICE}')", token).status_code == 403


class TestRecordings:
    """Recording metadata is readable; every content download is counted."""

    def test_metadata_and_counted_content(self, g: Harness) -> None:
        world = g.state.world
        token = app_token_with(g, "OnlineMeetingRecording.Read.All")
        base = meeting_path(g, "m-1") + "/recordings"
        assert get(g, base, token).json()["value"] == []
        world.play(["m-1"])
        (rec,) = get(g, base, token).json()["value"]
        assert rec["id"] == world.recording_id("m-1") and rec["recordingContentUrl"].endswith(
            "/content"
        )
        assert get(g, f"{base}/{rec['id']}", token).json()["meetingId"] == world.online_meeting_id(
            "m-1"
        )
        content = get(g, rec["recordingContentUrl"], token)
        assert content.headers["Content-Type"] == "video/mp4" and content.content[4:8] == b"ftyp"
        get(g, rec["recordingContentUrl"], token)
        assert world.recording_content_downloads == 2
        assert get(g, base, g.app_token()).status_code == 403  # the product's app lacks the role
        assert world.recording_content_downloads == 2


class TestUsers:
    """Users are found by id or UPN; unknown ones are Request_ResourceNotFound."""

    async def test_by_upn_and_unknown(self, g: Harness, clients: list[Any]) -> None:
        users = sdk(g, clients).users
        assert (await users.by_user_id("ALICE@contoso.com").get()).id == ALICE
        with pytest.raises(ODataError) as err:
            await users.by_user_id("nobody@contoso.com").get()
        assert err.value.response_status_code == 404
        assert err.value.error.code == "Request_ResourceNotFound"
        org = await sdk(g, clients).organization.get()
        assert "contoso.com" in [d.name for d in org.value[0].verified_domains]
