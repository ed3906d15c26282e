"""Delegated tokens on the Graph emulator: a connected organizer's meetings and transcripts are
read with their own token, callRecords with the app's; without a usable cache, the app's."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import httpx
from structlog.testing import capture_logs

from core import vault
from emulators.tls import client_context
from tests.e2e.conftest import watch_pushes
from tests.e2e.harness import Stack
from tests.e2e.scenarios import ALICE, meeting, scenario
from workers import users
from workers.ledger import Ledger

KEY = "delegated-e2e-test-secret-key"
HIDDEN = r'<input type="hidden" name="([^"]+)" value="([^"]*)">'
CALL_RECORD = "GET /v1.0/communications/callRecords/{id}"
MEETINGS = "/v1.0/users/{uid}/onlineMeetings"


def connect(stack: Stack, user_id: str = ALICE) -> None:
    """The connect flow as a browser runs it: receiver, the emulator's sign-in, the callback."""
    base = str(stack.settings.public_url)
    with httpx.Client(verify=client_context(stack.ca_dir), timeout=30) as c:
        start = c.get(f"{base}/auth/connect")
        assert start.status_code == 302, start.text
        auth_uri = start.headers["Location"]
        page = c.get(auth_uri)
        fields = {k: html.unescape(v) for k, v in re.findall(HIDDEN, page.text)}
        back = c.post(auth_uri.split("?")[0], data={**fields, "user": user_id})
        assert back.status_code == 302, back.text
        done = c.get(back.headers["Location"])
        assert done.status_code == 200, done.text
    user = users.find(stack.conn, user_id)
    assert user is not None and user.source == "connect"


def process(stack: Stack, mid: str) -> dict[str, dict[str, int]]:
    """Play the meeting, work until it is decided; the Graph data requests by token kind."""
    before = stack.stats()["requests_by_token"]
    stack.play(mid)
    ledger = Ledger(stack.conn)

    def outcome() -> Any:
        key = ledger.find(stack.world.call_record_id(mid))
        return ledger.meeting(key).get("outcome") if key else None

    assert stack.work(lambda: outcome() is not None, 30), outcome()
    assert outcome() == "pushed"
    after = stack.stats()["requests_by_token"]
    return {
        kind: {
            route: n - before[kind].get(route, 0)
            for route, n in routes.items()
            if "/v1.0/" in route
            and "subscriptions" not in route
            and n != before[kind].get(route, 0)
        }
        for kind, routes in after.items()
    }


def meeting_routes(requests: dict[str, int]) -> set[str]:
    return {route for route in requests if MEETINGS in route}


class TestConnectedOrganizer:
    """A connected organizer's meeting, attendance and transcript requests carry their
    delegated token; the callRecord carries the app token; the meeting is pushed."""

    def test_delegated(self, redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
        pushed = watch_pushes(monkeypatch)
        with Stack(
            scenario(meeting("m1")), redis_url, tmp_path, salesforce=True, secret_key=KEY
        ) as stack:
            connect(stack)
            stack.ensure_subscriptions()
            with capture_logs() as logs:
                spent = process(stack, "m1")
            assert meeting_routes(spent["app"]) == set()
            assert set(spent["app"]) == {CALL_RECORD}
            assert meeting_routes(spent["delegated"]) >= {
                f"GET {MEETINGS}",
                f"GET {MEETINGS}/{{meeting}}/attendanceReports",
                f"GET {MEETINGS}/{{meeting}}/attendanceReports/{{report}}",
                f"GET {MEETINGS}/{{meeting}}/transcripts",
                f"GET {MEETINGS}/{{meeting}}/transcripts/{{transcript}}/content",
            }
            assert CALL_RECORD not in spent["delegated"]
            assert not [e for e in logs if e["event"] == "delegated_token_unavailable"]
            assert len(pushed) == 1


class TestRefresh:
    """An expired access token is refreshed silently and the new cache is sealed back."""

    def test_refreshed(self, redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
        watch_pushes(monkeypatch)
        with Stack(
            scenario(meeting("m1")), redis_url, tmp_path, salesforce=True, secret_key=KEY
        ) as stack:
            connect(stack)
            stack.ensure_subscriptions()
            box = vault.token_cache_vault(KEY)
            cache = json.loads(vault.load_token_cache(stack.conn, box, ALICE) or "{}")
            (old,) = cache["AccessToken"].values()
            for entry in cache["AccessToken"].values():
                entry["expires_on"] = entry["extended_expires_on"] = "1000"
            vault.save_token_cache(stack.conn, box, ALICE, json.dumps(cache))
            spent = process(stack, "m1")
            assert f"GET {MEETINGS}/{{meeting}}/transcripts" in spent["delegated"]
            stored = json.loads(vault.load_token_cache(stack.conn, box, ALICE) or "{}")
            fresh = list(stored["AccessToken"].values())
            assert fresh and all(int(e["expires_on"]) > 1000 for e in fresh)
            assert all(e["secret"] != old["secret"] for e in fresh)


class TestFallback:
    """Without a usable token cache (removed, or sealed with another key) a connected
    organizer's meeting is read with the app token, with a warning naming the user."""

    def test_removed_or_broken_cache(
        self, redis_url: str, tmp_path: Path, monkeypatch: Any
    ) -> None:
        pushed = watch_pushes(monkeypatch)
        doc = scenario(meeting("m1"), meeting("m2"))
        with Stack(doc, redis_url, tmp_path, salesforce=True, secret_key=KEY) as stack:
            connect(stack)
            stack.ensure_subscriptions()
            key = vault.TOKENS_PREFIX + ALICE
            stack.conn.set(key, vault.token_cache_vault("another-secret-key-0123").seal(b"{}"))
            for mid in ("m1", "m2"):
                with capture_logs() as logs:
                    spent = process(stack, mid)
                assert spent["delegated"] == {}, mid
                assert f"GET {MEETINGS}/{{meeting}}/transcripts" in spent["app"], mid
                warned = [e for e in logs if e["event"] == "delegated_token_unavailable"]
                assert warned and {e["user_id"] for e in warned} == {ALICE}, mid
                assert all(e["log_level"] == "warning" for e in warned)
                stack.conn.delete(key)  # m2: no cache at all
            assert len(pushed) == 2


class TestAdminAddedUser:
    """A user an admin added (no connect flow) is read with the app token, secret key or not."""

    def test_app_token(self, redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
        watch_pushes(monkeypatch)
        with Stack(
            scenario(meeting("m1")), redis_url, tmp_path, salesforce=True, secret_key=KEY
        ) as stack:
            assert users.find(stack.conn, ALICE).source == "admin"  # type: ignore[union-attr]
            stack.ensure_subscriptions()
            with capture_logs() as logs:
                spent = process(stack, "m1")
            assert spent["delegated"] == {}
            assert f"GET {MEETINGS}" in spent["app"]
            assert not [e for e in logs if e["event"] == "delegated_token_unavailable"]
