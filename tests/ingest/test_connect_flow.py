"""The connect flow end to end over plain HTTP: receiver, msal and the Graph emulator's sign-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
from structlog.testing import capture_logs

from core.exceptions import UpstreamTransient
from tests.emulators.graph_harness import ALICE, BOB, TENANT, fast_options
from tests.emulators.test_graph_identity import make_client_cert
from tests.ingest.connect_stack import Stack, running
from workers import oauth, subscriptions, users

# msgraph's generated builders warn as they are first imported (not ours); the subscription
# is created through them.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions"),
]

DESIGN_SCOPES = {
    "Calendars.Read", "Files.Read", "OnlineMeetingArtifact.Read.All", "OnlineMeetings.Read",
    "OnlineMeetingTranscript.Read.All", "User.Read", "openid", "profile", "email",
    "offline_access",
}  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    with running(tmp_path, redis_url) as s:
        yield s


class TestConnect:
    """Signing in registers the user, seals their token cache and creates their subscription."""

    def test_authorize_request(self, stack: Stack) -> None:
        with stack.client() as c:
            resp = c.get(f"{stack.url}/auth/connect")
        assert resp.status_code == 302
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
        assert set(query["scope"][0].split()) == DESIGN_SCOPES
        assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
        assert query["redirect_uri"] == [f"{stack.url}/auth/callback"]
        assert "response_mode" not in query and query["state"][0]
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=600" in cookie
        assert query["state"][0] not in cookie  # sealed, not readable

    def test_connect(self, stack: Stack) -> None:
        with stack.client() as c, capture_logs() as logs:
            page = stack.sign_in(c)
        assert page.status_code == 200, page.text
        assert "Connected" in page.text and "alice@contoso.com" in page.text
        user = users.find(stack.conn, ALICE)
        assert user is not None and user.source == "connect" and user.upn == "alice@contoso.com"
        raw, plain = stack.stored_cache()
        assert raw is not None and plain is not None
        with pytest.raises(ValueError):
            json.loads(raw)
        assert json.loads(plain)["RefreshToken"]
        mine, graph = stack.transcript_subscriptions()
        assert len(mine) == 1 and mine == graph
        assert any(e["event"] == "user_connected" for e in logs)
        assert not any("emulator-secret" in repr(e) for e in logs)

    def test_stored_cache_refreshes_silently(self, stack: Stack) -> None:
        with stack.client() as c:
            stack.sign_in(c)
        cache = msal.SerializableTokenCache()
        cache.deserialize(stack.stored_cache()[1])
        with oauth.http_session(stack.settings) as session:
            app = oauth.msal_app(stack.settings, session, cache)
            account = app.get_accounts()[0]
            result = app.acquire_token_silent_with_error(
                list(oauth.DELEGATED_SCOPES), account=account, force_refresh=True
            )
        assert result is not None and "access_token" in result, result

    def test_callback_is_single_use(self, stack: Stack) -> None:
        with stack.client() as c:
            done = stack.sign_in(c)
            assert done.status_code == 200 and "ingest_connect" not in c.cookies
            again = c.get(done.request.url)  # the same code and state, replayed
        assert again.status_code == 400 and "Sign-in session not found" in again.text

    def test_disconnect(self, stack: Stack) -> None:
        with stack.client() as c:
            stack.sign_in(c)
            assert stack.transcript_subscriptions()[0]
            page = c.post(f"{stack.url}/auth/disconnect")
        assert page.status_code == 200 and "Disconnected" in page.text, page.text
        assert users.find(stack.conn, ALICE) is None
        assert stack.stored_cache() == (None, None)
        assert stack.transcript_subscriptions() == ([], [])

    def test_subscription_failure_still_connects(
        self, stack: Stack, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(self: object) -> None:
            raise UpstreamTransient("Graph is down")

        monkeypatch.setattr(subscriptions.Manager, "ensure", refuse)
        with stack.client() as c, capture_logs() as logs:
            page = stack.sign_in(c)
        assert page.status_code == 200 and "could not be created" in page.text
        assert users.find(stack.conn, ALICE) is not None and stack.stored_cache()[1]
        assert any(e["event"] == "connect_subscription_failed" for e in logs)

    def test_second_user_keeps_the_first(self, stack: Stack) -> None:
        with stack.client() as c:
            stack.sign_in(c)
        with stack.client() as c:
            assert stack.sign_in(c, user=BOB).status_code == 200
        assert {u.id for u in users.all_users(stack.conn)} == {ALICE, BOB}
        assert len(stack.transcript_subscriptions(ALICE)[1]) == 1
        assert len(stack.transcript_subscriptions(BOB)[1]) == 1


class TestCertificate:
    """With GRAPH_CLIENT_CERTIFICATE_PATH instead of a secret, msal signs a client assertion."""

    def test_connect_with_certificate(self, tmp_path: Path, redis_url: str) -> None:
        cert = make_client_cert(tmp_path / "client")
        options = fast_options(client_certificate=cert)
        changes = {"graph_client_secret": None, "graph_client_certificate_path": cert}
        with running(tmp_path, redis_url, options, **changes) as stack:
            with stack.client() as c:
                page = stack.sign_in(c)
            assert page.status_code == 200 and "Connected" in page.text, page.text
            assert stack.stored_cache()[1] is not None


class TestRefusals:
    """Declined consent and another tenant end on a readable page with nothing stored."""

    def test_cancel(self, stack: Stack) -> None:
        with stack.client() as c, capture_logs() as logs:
            page = stack.sign_in(c, user=None)
        assert page.status_code == 400 and "Access was not granted" in page.text
        assert "Traceback" not in page.text and stack.nothing_stored()
        assert any(e["event"] == "connect_denied" for e in logs)

    def test_wrong_tenant(self, tmp_path: Path, redis_url: str) -> None:
        # The emulator signs in "contoso.com" users of its tenant: the id_token's tid differs.
        with running(tmp_path, redis_url, graph_tenant_id="contoso.com") as stack:
            with stack.client() as c, capture_logs() as logs:
                page = stack.sign_in(c)
            assert page.status_code == 403 and "Wrong organisation" in page.text
            assert stack.nothing_stored() and stack.transcript_subscriptions() == ([], [])
        assert any(e.get("event_type") == "connect_wrong_tenant" for e in logs)


class TestAdminConsent:
    """The admin-consent link goes to Entra's adminconsent page and comes back to a result."""

    def test_admin_consent(self, stack: Stack) -> None:
        with stack.client() as c:
            start = c.get(f"{stack.url}/auth/admin-consent")
            assert start.status_code == 302
            target = urlsplit(start.headers["Location"])
            assert target.path == f"/{TENANT}/adminconsent"
            back = c.get(start.headers["Location"])
            assert back.status_code == 302
            page = c.get(back.headers["Location"])
        assert page.status_code == 200 and "Admin consent granted" in page.text
        assert "CallRecords.Read.All" in page.text


DISCOVERY = "GET /{tenant}/v2.0/.well-known/openid-configuration"


class TestDiscovery:
    """The tenant's OpenID configuration is fetched once per process, not once per request;
    each sign-in still gets a token cache of its own."""

    def test_connects_and_sign_ins_fetch_it_once(self, tmp_path: Path, redis_url: str) -> None:
        # Tenant-wide: no per-user subscription, whose Graph client would fetch it too.
        with running(tmp_path, redis_url, tenant_wide_transcripts=True) as stack:
            with stack.client() as c:
                for _ in range(20):
                    assert c.get(f"{stack.url}/auth/connect").status_code == 302
            for user in (ALICE, BOB):
                with stack.client() as c:
                    assert stack.sign_in(c, user=user).status_code == 200
            requests = stack.graph.control("GET", "/_emulator/stats").json()["requests"]
            alice, bob = stack.stored_cache(ALICE)[1], stack.stored_cache(BOB)[1]
        assert requests[DISCOVERY] == 1
        assert requests["POST /{tenant}/oauth2/v2.0/token"] == 2
        assert alice is not None and bob is not None
        assert BOB not in alice and ALICE not in bob
        assert ALICE in alice and BOB in bob
