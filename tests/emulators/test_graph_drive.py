"""The Graph emulator's OneDrive: recordings as driveItem metadata in the organizer's
`Recordings` folder, `Files.Read` enforced as Graph does, and every content download counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.graph import drive
from tests.emulators.graph_harness import Harness, start_emulator
from tests.emulators.test_graph_data import ALICE, BOB, SCENARIO, app_token_with, get, user_token

# m-1 (Alice, recorded) and m-4 (Alice, recorded, same subject a week later); m-3 (Alice, not
# recorded); m-2 (Bob, not recorded).
MEETINGS = [
    *SCENARIO["meetings"],
    {"id": "m-4", "subject": "Renewal", "organizer": "alice@contoso.com",
     "start": "2026-11-27T15:00:00Z", "end": "2026-11-27T15:45:00Z", "recording": True},
]  # fmt: skip
CHILDREN = "/v1.0/users/{uid}/drive/root:/Recordings:/children"


@pytest.fixture
def g(tmp_path: Path) -> Iterator[Harness]:
    bg, harness = start_emulator(tmp_path / "ca", scenario={**SCENARIO, "meetings": MEETINGS})
    try:
        yield harness
    finally:
        bg.close()


def alice(g: Harness, *scopes: str) -> str:
    return user_token(g, ALICE, list(scopes or ["Files.Read"]))


def listing(g: Harness, token: str, uid: str = ALICE, query: str = "") -> Any:
    return get(g, CHILDREN.format(uid=uid) + query, token)


class TestRecordingsFolder:
    """The folder lists one video driveItem per played, recorded meeting of its owner."""

    def test_absent_until_a_recorded_meeting_is_played(self, g: Harness) -> None:
        reply = listing(g, alice(g))
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "itemNotFound"
        g.state.world.play(["m-3"])  # not recorded
        assert listing(g, alice(g)).status_code == 404

    def test_items(self, g: Harness) -> None:
        g.state.world.play(["m-1", "m-2", "m-3", "m-4"])
        query = "?$select=id,name,webUrl,createdDateTime,file,size"
        first, second = listing(g, alice(g), query=query).json()["value"]
        assert first["name"] == "Renewal-20261120_150000-Meeting Recording.mp4"
        assert second["name"] == "Renewal-20261127_150000-Meeting Recording.mp4"
        assert first["createdDateTime"] == "2026-11-20T15:30:00Z"  # uploaded as the meeting ends
        assert first["file"] == {"mimeType": "video/mp4"} and first["size"] > 0
        assert first["webUrl"].startswith(
            "https://contoso-my.sharepoint.com/personal/alice_contoso_com/Documents/Recordings/"
        )
        assert set(first) == {"id", "name", "webUrl", "createdDateTime", "file", "size"}
        assert g.state.world.recording_content_downloads == 0

    def test_me_and_pages(self, g: Harness) -> None:
        g.state.world.play(["m-1", "m-4"])
        one = get(g, "/v1.0/me/drive/root:/Recordings:/children?$top=1", alice(g)).json()
        assert len(one["value"]) == 1 and "@odata.nextLink" in one
        rest = get(g, one["@odata.nextLink"], alice(g)).json()
        assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest


class TestFilesRead:
    """Graph's "List children" permissions: "Delegated (work or school account): Files.Read";
    "Application: Files.Read.All". Files.Read reaches the signed-in user's own files only."""

    @pytest.mark.parametrize(
        ("scopes", "status"),
        [(["Files.Read"], 200), (["Files.ReadWrite"], 200), (["Files.Read.All"], 200),
         (["OnlineMeetings.Read", "OnlineMeetingTranscript.Read.All"], 403)],
    )  # fmt: skip
    def test_delegated_scopes(self, g: Harness, scopes: list[str], status: int) -> None:
        g.state.world.play(["m-1"])
        reply = listing(g, alice(g, *scopes))
        assert reply.status_code == status
        if status == 403:
            assert reply.json()["error"]["code"] == "accessDenied"

    def test_only_own_drive(self, g: Harness) -> None:
        g.state.world.play(["m-1"])
        bob = user_token(g, BOB, ["Files.Read"])
        assert listing(g, bob).status_code == 403

    def test_app_tokens_need_the_application_permission(self, g: Harness) -> None:
        g.state.world.play(["m-1"])
        assert listing(g, g.app_token()).status_code == 403  # the product's app has no Files role
        assert listing(g, app_token_with(g, "Files.Read.All")).status_code == 200
        me = get(g, "/v1.0/me/drive/root:/Recordings:/children", g.app_token())
        assert me.status_code == 400  # `/me` needs a signed-in user


class TestContentCounted:
    """The item's metadata is free; its content is a download, counted every time."""

    def test_download_counted(self, g: Harness) -> None:
        world = g.state.world
        world.play(["m-1"])
        item = drive.item_id(world, "m-1")
        base = f"/v1.0/users/{ALICE}/drive/items/{item}"
        assert get(g, base, alice(g)).json()["name"].startswith("Renewal-")
        assert world.recording_content_downloads == 0
        content = get(g, base + "/content", alice(g))
        assert content.status_code == 200 and content.content[4:8] == b"ftyp"
        assert world.recording_content_downloads == 1
        assert get(g, f"/v1.0/users/{ALICE}/drive/items/nope/content", alice(g)).status_code == 404
        assert world.recording_content_downloads == 1
