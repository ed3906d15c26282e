"""The Graph emulator refuses what Graph refuses: roles the admin did not consent to, reads of
meetings outside the Teams application access policy, and transcript content in other formats."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from emulators.scenario import APP_PERMISSIONS
from emulators.tls import client_context
from tests.emulators.graph_harness import ALICE, BOB, SCENARIO, Harness, start_emulator

NO_POLICY = "No application access policy found for this app."


def scenario(**tenant: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SCENARIO)
    doc["tenant"].update(tenant)
    return doc


Start = Callable[..., Harness]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Starts an emulator whose tenant has the given fields, with every meeting played."""
    loops = []

    def make(**tenant: Any) -> Harness:
        bg, harness = start_emulator(tmp_path / f"ca{len(loops)}", scenario=scenario(**tenant))
        loops.append(bg)
        harness.control("POST", "/_emulator/play", {})
        return harness

    try:
        yield make
    finally:
        for bg in loops:
            bg.close()


def get(g: Harness, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or g.app_token()}", **kwargs.pop("headers", {})}
    with httpx.Client(verify=client_context(g.ca_dir)) as c:
        return c.get(f"{g.url}{path}", headers=headers, **kwargs)


def user_token(g: Harness, uid: str, scopes: list[str]) -> str:
    user = g.state.world.user(uid)
    assert user is not None
    return g.state.issuer.user_token(g.url, "emulator-app", user.id, user.upn, user.name, scopes)[0]


def error(resp: httpx.Response) -> tuple[int, str, str]:
    body = resp.json()["error"]
    return resp.status_code, body["code"], body["message"]


def meeting_path(g: Harness, mid: str) -> str:
    world = g.state.world
    return f"/v1.0/users/{world.organizer_id(mid)}/onlineMeetings/{world.online_meeting_id(mid)}"


def transcript_path(g: Harness, mid: str) -> str:
    return f"{meeting_path(g, mid)}/transcripts/{g.state.world.transcript_id(mid)}"


class TestConsentedRoles:
    """App tokens carry only `tenant.app_permissions` (DESIGN §7); each route wants its role.

    Permissions reference, application permissions: "CallRecords.Read.All: Allows the app to
    read call records for all calls and online meetings without a signed-in user";
    "Organization.Read.All: Allows the app to read the organization and related resources,
    without a signed-in user"; "User.Read.All: Allows the app to read user profiles without a
    signed in user".
    """

    def test_default_is_every_role_design_names(self, start: Start) -> None:
        emulator = start()
        claims = jwt.decode(emulator.app_token(), options={"verify_signature": False})
        assert tuple(claims["roles"]) == APP_PERMISSIONS
        assert "Organization.Read.All" in claims["roles"]

    def test_token_carries_only_consented_roles(self, start: Start) -> None:
        emulator = start(app_permissions=["CallRecords.Read.All"])
        claims = jwt.decode(emulator.app_token(), options={"verify_signature": False})
        assert claims["roles"] == ["CallRecords.Read.All"]

    def test_organization_needs_organization_read_all(self, start: Start) -> None:
        """GET /organization, Permissions: "Application | Organization.Read.All |
        Directory.Read.All, Organization.ReadWrite.All, Directory.ReadWrite.All"; delegated:
        "User.Read"."""
        emulator = start(app_permissions=["User.Read.All"])
        assert error(get(emulator, "/v1.0/organization")) == (
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )  # fmt: skip
        alice = user_token(emulator, ALICE, ["User.Read"])
        assert get(emulator, "/v1.0/organization", alice).status_code == 200

    def test_organization_with_a_higher_role(self, start: Start) -> None:
        emulator = start(app_permissions=["Directory.Read.All"])
        assert get(emulator, "/v1.0/organization").json()["value"][0]["verifiedDomains"]

    def test_user_needs_user_read_all(self, start: Start) -> None:
        """GET /users/{id}, Permissions: "Application | User.Read.All | Directory.Read.All,
        Directory.ReadWrite.All, User.ReadWrite.All"."""
        emulator = start(app_permissions=["Organization.Read.All"])
        status, code, _ = error(get(emulator, f"/v1.0/users/{ALICE}"))
        assert (status, code) == (403, "Authorization_RequestDenied")
        assert get(emulator, "/v1.0/organization").status_code == 200

    def test_call_records_need_call_records_read_all(self, start: Start) -> None:
        """Get callRecord, Permissions: "Application | CallRecords.Read.All"."""
        emulator = start(app_permissions=["User.Read.All"])
        cid = emulator.state.world.call_record_id("m-001")
        status, code, message = error(get(emulator, f"/v1.0/communications/callRecords/{cid}"))
        assert (status, code) == (403, "Forbidden") and "CallRecords.Read.All" in message
        assert get(emulator, f"/v1.0/users/{ALICE}").status_code == 200

    def test_artifacts_need_their_own_roles(self, start: Start) -> None:
        """Attendance reports: "Application | OnlineMeetingArtifact.Read.All"; transcripts:
        "Application | OnlineMeetingTranscript.Read.All"."""
        emulator = start(
            app_permissions=["CallRecords.Read.All", "OnlineMeetings.Read.All", "User.Read.All"]
        )
        base = meeting_path(emulator, "m-001")
        assert get(emulator, base).status_code == 200
        assert get(emulator, base + "/attendanceReports").status_code == 403
        assert get(emulator, base + "/transcripts").status_code == 403
        assert get(emulator, transcript_path(emulator, "m-001") + "/content").status_code == 403


class TestAccessPolicy:
    """App reads of a user's meetings, attendance and transcripts need the Teams application
    access policy granted to that user.

    Get callTranscript: "To use application permission for this API, tenant administrators
    must create an application access policy and grant it to a user. It authorizes the app
    configured in the policy to fetch online meetings and/or online meeting artifacts on
    behalf of that user (with the user ID specified in the request path)." "Configure
    application access to online meetings", Errors: 403 "No application access policy found
    for this app".
    """

    def test_outside_the_policy_is_403(self, start: Start) -> None:
        emulator = start(access_policy=["alice@contoso.com"])
        world = emulator.state.world
        bobs = meeting_path(emulator, "m-002")
        refused = [
            f"/v1.0/users/{BOB}/onlineMeetings",
            bobs,
            bobs + "/attendanceReports",
            bobs + "/transcripts",
            transcript_path(emulator, "m-002"),
            transcript_path(emulator, "m-002") + "/content",
            f"/v1.0/communications/onlineMeetings/{world.online_meeting_id('m-002')}/transcripts",
            f"/v1.0/users/{BOB}/onlineMeetings/getAllTranscripts(meetingOrganizerUserId='{BOB}')",
        ]
        for path in refused:
            resp = get(emulator, path, params={"$filter": "joinWebUrl eq 'x'"}
                       if path.endswith("onlineMeetings") else None)  # fmt: skip
            assert error(resp) == (403, "Forbidden", NO_POLICY), path
        alices = meeting_path(emulator, "m-001")
        assert get(emulator, alices).status_code == 200
        assert get(emulator, alices + "/attendanceReports").status_code == 200
        assert get(emulator, transcript_path(emulator, "m-001") + "/content").status_code == 200
        # callRecords are not behind the policy: only the meeting artifacts are.
        cid = world.call_record_id("m-002")
        assert get(emulator, f"/v1.0/communications/callRecords/{cid}").status_code == 200

    def test_delegated_tokens_need_no_policy(self, start: Start) -> None:
        """The policy governs application permissions; the connect flow's delegated token reads
        the signed-in user's own meetings."""
        emulator = start(access_policy=[])
        bob = user_token(emulator, BOB, ["OnlineMeetings.Read", "OnlineMeetingTranscript.Read.All"])
        assert get(emulator, meeting_path(emulator, "m-002"), bob).status_code == 200
        content = transcript_path(emulator, "m-002") + "/content"
        assert get(emulator, content, bob).status_code == 200
        assert error(get(emulator, content))[2] == NO_POLICY

    def test_global_policy_covers_everyone(self, start: Start) -> None:
        emulator = start()
        assert get(emulator, meeting_path(emulator, "m-002")).status_code == 200


class TestTranscriptFormat:
    """Transcript content is WebVTT, asked for by `Accept` or `$format`.

    Get callTranscript, Example 3: "GET …/transcripts/{id}/content?$format=text/vtt" →
    "Content-type: text/vtt"; "The docx format for transcripts is deprecated as of May 31,
    2023." Graph refuses other formats with 400 "Invalid format 'application/octet-stream,
    application/json' specified." (msgraph-sdk-dotnet#2505: the SDK's default Accept).
    """

    @pytest.mark.parametrize(
        "accept",
        [
            "application/json",
            "application/octet-stream, application/json",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ],
    )
    def test_other_accept_is_400(self, start: Start, accept: str) -> None:
        emulator = start()
        content = transcript_path(emulator, "m-001") + "/content"
        resp = get(emulator, content, headers={"Accept": accept})
        assert error(resp) == (400, "BadRequest", f"Invalid format '{accept}' specified.")
        assert emulator.state.world.transcript_content_downloads == {}

    def test_vtt_by_accept_or_format(self, start: Start) -> None:
        emulator = start()
        content = transcript_path(emulator, "m-001") + "/content"
        by_accept = get(emulator, content, headers={"Accept": "text/vtt"})
        assert by_accept.status_code == 200
        assert by_accept.headers["Content-Type"].startswith("text/vtt")
        by_format = get(emulator, content, params={"$format": "text/vtt"},
                        headers={"Accept": "application/json"})  # fmt: skip
        assert by_format.status_code == 200 and by_format.text.startswith("WEBVTT")
        wrong = get(emulator, content, params={"$format": "application/json"})
        assert error(wrong)[:2] == (400, "BadRequest")
        assert emulator.state.world.transcript_content_downloads == {"m-001": 2}
