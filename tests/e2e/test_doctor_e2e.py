"""`ingest doctor` against the emulators over HTTPS, the receiver the Stack runs and a real
redis-server: a consent gap per permission, users outside the Teams application access
policy, lost subscriptions, an unreachable Graph, and the whole command exiting 0 or 1."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from core import keys
from core.settings import Settings
from emulators.salesforce.app import Config
from emulators.scenario import APP_PERMISSIONS
from ingest.checkup import Check
from ingest.doctor import collect
from ingest.embedded_redis import RedisServer, free_port
from tests.e2e.harness import Stack
from tests.e2e.scenarios import ALICE, BOB, meeting, scenario
from tests.emulators.salesforce_harness import Server
from workers import registry
from workers.subscriptions import GraphSubscriptions

INGEST = str(Path(sys.executable).parent / "ingest")
ROOT = Path(__file__).resolve().parents[2]
ORDER = [
    "settings", "redis", "redis persistence", "graph token",
    "permission CallRecords.Read.All", "permission User.Read.All",
    "permission OnlineMeetings.Read.All", "permission OnlineMeetingArtifact.Read.All",
    "permission OnlineMeetingTranscript.Read.All",
    "access policy alice@contoso.com", "access policy bob@contoso.com",
    "handshake /graph/notifications", "handshake /graph/lifecycle", "subscriptions",
    "salesforce sign-in", "salesforce schema",
]  # fmt: skip


@pytest.fixture
def aof_redis() -> Iterator[str]:
    """A redis-server of the test's own with AOF on, as a live setup should have it."""
    with RedisServer() as server:
        conn = redis.Redis.from_url(server.url)
        conn.config_set("appendonly", "yes")
        yield f"{server.url}/0"
        conn.config_set("appendonly", "no")  # else the server fsyncs its AOF while it stops
        conn.close()


def tenant(**fields: Any) -> dict[str, Any]:
    """Alice and Bob are ECI users an admin added (the Stack adds every `eci` user so)."""
    doc = scenario(meeting("m1"), meeting("b1", organizer="bob@contoso.com"))
    doc["tenant"].update(fields)
    for user in doc["users"]:
        user["eci"] = user["upn"] in ("alice@contoso.com", "bob@contoso.com")
    return doc


@contextlib.contextmanager
def live(
    doc: dict[str, Any], redis_url: str, tmp: Path, subscribe: bool = True, **over: Any
) -> Iterator[tuple[Stack, Settings]]:
    """The Graph emulator and the receiver (Stack), the Salesforce emulator on the same CA, and
    the settings of a live setup pointed at them."""
    with Stack(doc, redis_url, tmp, **over) as stack, Server(Config(), stack.ca_dir) as sf:
        if subscribe:
            stack.ensure_subscriptions()
        settings = dataclasses.replace(stack.settings, sf_instance_url=sf.base,
                                       sf_client_id="emulator-app",
                                       sf_client_secret="emulator-secret")  # fmt: skip
        yield stack, settings


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def failures(checks: list[Check]) -> set[str]:
    return {c.name for c in checks if not c.ok}


def env_of(settings: Settings) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPH_", "SF_", "INGEST_", "POLICY_", "INTERNAL_", "REDIS_"))
    }
    env.update(PYTHONPATH=str(ROOT), REDIS_URL=settings.redis_url,
               INGEST_PUBLIC_URL=str(settings.public_url),
               GRAPH_TENANT_ID=str(settings.graph_tenant_id), GRAPH_CLIENT_ID="emulator-app",
               GRAPH_CLIENT_SECRET="emulator-secret", GRAPH_BASE_URL=settings.graph_base_url,
               GRAPH_AUTHORITY=settings.graph_authority, INGEST_CA_BUNDLE=str(settings.ca_bundle),
               INTERNAL_DOMAINS=",".join(settings.internal_domains),
               SF_INSTANCE_URL=str(settings.sf_instance_url), SF_CLIENT_ID="emulator-app",
               SF_CLIENT_SECRET="emulator-secret")  # fmt: skip
    return env


def doctor(settings: Settings, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INGEST, "doctor", *flags], env=env_of(settings), capture_output=True,
                          text=True, timeout=90)  # fmt: skip


class TestAcceptance:
    """DESIGN §3.4 on the emulators: exit 0 when all is right; one missing permission and one
    user outside the access policy exit 1, each named with its fix."""

    def test_everything_right_exits_0(self, aof_redis: str, tmp_path: Path) -> None:
        with live(tenant(), aof_redis, tmp_path) as (_, settings):
            done = doctor(settings, "--json")
            text = doctor(settings)
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout)  # stdout holds the one document and nothing else
        assert list(report) == ["checks"]
        assert [c["name"] for c in report["checks"]] == ORDER
        for check in report["checks"]:
            assert set(check) == {"name", "ok", "detail", "fix"}
            assert check["ok"] is True and check["fix"] is None, check
        assert text.returncode == 0
        lines = text.stdout.splitlines()
        assert len(lines) == len(ORDER) and all(line.startswith("ok    ") for line in lines)
        assert "emulator-secret" not in done.stdout + done.stderr + text.stdout + text.stderr

    def test_missing_permission_and_user_outside_the_policy_exit_1(
        self, aof_redis: str, tmp_path: Path
    ) -> None:
        roles = [r for r in APP_PERMISSIONS if r != "OnlineMeetingArtifact.Read.All"]
        doc = tenant(app_permissions=roles, access_policy=["alice@contoso.com"])
        with live(doc, aof_redis, tmp_path) as (_, settings):
            done = doctor(settings, "--json")
        assert done.returncode == 1, done.stderr
        checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
        assert {n for n, c in checks.items() if not c["ok"]} == {
            "permission OnlineMeetingArtifact.Read.All", "access policy bob@contoso.com"
        }  # fmt: skip
        consent = checks["permission OnlineMeetingArtifact.Read.All"]
        assert "403" in consent["detail"] and "roles lack it" in consent["detail"]
        link = f"{settings.graph_authority}/{settings.graph_tenant_id}/adminconsent"
        assert f"{link}?client_id=emulator-app" in consent["fix"]
        assert "OnlineMeetingArtifact.Read.All" in consent["fix"]
        policy = checks["access policy bob@contoso.com"]
        assert "No application access policy found for this app" in policy["detail"]
        for word in ("New-CsApplicationAccessPolicy", "Grant-CsApplicationAccessPolicy", BOB,
                     '-AppIds "emulator-app"'):  # fmt: skip
            assert word in policy["fix"]
        assert checks["access policy alice@contoso.com"]["ok"]


class TestConsent:
    """Each application permission the configuration needs is proven by its own read; a
    missing one is named with the admin-consent link, and only that one fails."""

    @pytest.mark.parametrize("missing", APP_PERMISSIONS)
    def test_each_missing_permission(self, redis_url: str, tmp_path: Path, missing: str) -> None:
        doc = tenant(app_permissions=[r for r in APP_PERMISSIONS if r != missing])
        # INTERNAL_DOMAINS unset: the tenant's verified domains are read (Organization.Read.All).
        with live(doc, redis_url, tmp_path, subscribe=False, internal_domains=()) as (
            _,
            settings,
        ):
            checks = collect(settings)
        permissions = {c.name for c in checks if c.name.startswith("permission ")}
        assert permissions == {f"permission {p}" for p in APP_PERMISSIONS}
        assert failures(checks) & permissions == {f"permission {missing}"}
        check = by_name(checks)[f"permission {missing}"]
        assert check.fix and missing in check.fix and "adminconsent?client_id=" in check.fix

    def test_organization_not_needed_with_internal_domains(
        self, redis_url: str, tmp_path: Path
    ) -> None:
        doc = tenant(app_permissions=[r for r in APP_PERMISSIONS if r != "Organization.Read.All"])
        with live(doc, redis_url, tmp_path) as (_, settings):
            checks = collect(settings)
        assert "permission Organization.Read.All" not in by_name(checks)
        assert failures(checks) == {"redis persistence"}  # the shared test Redis keeps nothing

    def test_meeting_permissions_only_for_admin_added_users(
        self, redis_url: str, tmp_path: Path
    ) -> None:
        doc = tenant(app_permissions=["CallRecords.Read.All", "User.Read.All"])
        with live(doc, redis_url, tmp_path, subscribe=False) as (stack, settings):
            stack.conn.delete(keys.USERS)
            checks = collect(settings)
        names = by_name(checks)
        assert not any("OnlineMeeting" in n for n in names)
        assert names["access policy"].ok
        assert not failures(checks) & {n for n in names if n.startswith("permission ")}


class TestAccessPolicy:
    """Each admin-added user is read with the app's token under the access policy."""

    def test_everyone_outside_the_policy(self, redis_url: str, tmp_path: Path) -> None:
        with live(tenant(access_policy=[]), redis_url, tmp_path, subscribe=False) as (_, s):
            checks = collect(s)
        found = by_name(checks)
        for upn, uid in (("alice@contoso.com", ALICE), ("bob@contoso.com", BOB)):
            check = found[f"access policy {upn}"]
            assert not check.ok and check.fix and uid in check.fix
            assert "Grant-CsApplicationAccessPolicy" in check.fix
        # No read gets past the policy, so the token's roles speak for the permissions.
        meeting = found["permission OnlineMeetings.Read.All"]
        assert meeting.ok and "app token's roles" in meeting.detail


class TestSubscriptions:
    """Held in Graph and not near expiry, or `ingest subscriptions ensure` is the fix."""

    def test_none_held(self, redis_url: str, tmp_path: Path) -> None:
        with live(tenant(), redis_url, tmp_path, subscribe=False) as (_, settings):
            check = by_name(collect(settings))["subscriptions"]
        assert not check.ok and "none held for communications/callRecords" in check.detail
        assert check.fix and "ingest subscriptions ensure" in check.fix

    def test_lost_in_graph(self, redis_url: str, tmp_path: Path) -> None:
        with live(tenant(), redis_url, tmp_path) as (stack, settings):
            lost = next(s for s in registry.load_all(stack.conn) if s.kind == "callRecords")
            api = GraphSubscriptions(settings)
            try:
                api.delete(lost.id)  # Graph drops it; the registry still holds it
            finally:
                api.close()
            check = by_name(collect(settings))["subscriptions"]
        assert not check.ok and f"{lost.id} (communications/callRecords) is no longer in Graph" in (
            check.detail
        )


class TestUnreachable:
    """Graph and the public URL unreachable: FAIL lines naming them, never a traceback."""

    def test_everything_down(self) -> None:
        port = free_port()
        settings = Settings(
            redis_url=f"redis://:redis-secret-value@127.0.0.1:{free_port()}/0", public_url=f"http://127.0.0.1:{free_port()}",
            graph_tenant_id="aaaaaaaa-1111-2222-3333-444444444444", graph_client_id="app",
            graph_client_secret="graph-secret-value", graph_base_url=f"https://127.0.0.1:{port}/v1.0",
            graph_authority=f"https://127.0.0.1:{port}", internal_domains=("contoso.com",),
            sf_instance_url=f"https://127.0.0.1:{free_port()}", sf_client_id="app",
            sf_client_secret="sf-secret-value",
        )  # fmt: skip
        checks = collect(settings)
        found = by_name(checks)
        assert not found["graph token"].ok and "unreachable" in found["graph token"].detail
        for name in ("permission CallRecords.Read.All", "subscriptions"):
            assert not found[name].ok and "no app token" in found[name].detail
        assert found["handshake /graph/notifications"].detail.startswith("cannot reach")
        assert not found["salesforce sign-in"].ok
        assert not found["redis"].ok and not found["redis persistence"].ok
        assert found["access policy"].detail.startswith("cannot read the ECI users from Redis")
        assert "secret-value" not in "\n".join(c.line() for c in checks)

    def test_refused_secret(self, redis_url: str, tmp_path: Path) -> None:
        with live(tenant(), redis_url, tmp_path, subscribe=False) as (_, settings):
            wrong = dataclasses.replace(settings, graph_client_secret="not-the-secret")
            checks = collect(wrong)
        found = by_name(checks)
        token = found["graph token"]
        assert not token.ok and "AADSTS7000215" in token.detail  # Entra's "invalid secret"
        assert token.fix and "Certificates & secrets" in token.fix
        assert "not-the-secret" not in "\n".join(c.line() for c in checks)
        assert all(not c.ok for n, c in found.items() if n.startswith("permission "))
        assert found["salesforce schema"].ok  # the other checks go on
