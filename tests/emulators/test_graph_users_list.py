"""`GET /users` on the Graph emulator: the directory's users, a page at a time, for an app
holding User.Read.All (what `ingest doctor` reads to prove that permission)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators.tls import client_context
from tests.emulators.graph_harness import SCENARIO, Harness, start_emulator


@pytest.fixture
def narrow(tmp_path: Path) -> Iterator[Harness]:
    """An emulator whose admin consented to CallRecords.Read.All alone."""
    doc = copy.deepcopy(SCENARIO)
    doc["tenant"]["app_permissions"] = ["CallRecords.Read.All"]
    bg, harness = start_emulator(tmp_path / "ca", scenario=doc)
    try:
        yield harness
    finally:
        bg.close()


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[Harness]:
    bg, harness = start_emulator(tmp_path / "ca")
    try:
        yield harness
    finally:
        bg.close()


def get(g: Harness, path: str) -> httpx.Response:
    with httpx.Client(verify=client_context(g.ca_dir)) as c:
        return c.get(f"{g.url}{path}", headers={"Authorization": f"Bearer {g.app_token()}"})


class TestListUsers:
    """Permissions differences between Azure AD Graph and Microsoft Graph: "on Microsoft Graph,
    reading users in app-only scenarios requires only the User.Read.All permission"; List
    users (Get-MgUser): "Application | User.Read.All | User.ReadWrite.All, Directory.Read.All".
    """

    def test_a_page_of_users(self, graph: Harness) -> None:
        resp = get(graph, "/v1.0/users?$top=1&$select=id")
        assert resp.status_code == 200
        body = resp.json()
        assert len(body["value"]) == 1 and set(body["value"][0]) == {"id"}
        assert "$skiptoken" in body["@odata.nextLink"]  # the scenario has more users
        assert body["@odata.context"].endswith("/$metadata#users")

    def test_refused_without_user_read_all(self, narrow: Harness) -> None:
        resp = get(narrow, "/v1.0/users?$top=1")
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "Authorization_RequestDenied"
