"""The Graph emulator's identity side, driven by the product's real clients."""

from __future__ import annotations

import contextlib
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.graph.tokens import APP_ROLES
from emulators.tls import client_context
from tests.certs import self_signed
from tests.emulators.graph_harness import (
    ALICE,
    BOB,
    TENANT,
    Harness,
    fast_options,
    graph,
    start_emulator,
)

__all__ = ["graph"]  # the fixture, re-exported for pytest

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
REDIRECT = "http://127.0.0.1:9/auth/callback"
DELEGATED = ["User.Read", "OnlineMeetingTranscript.Read.All"]


def secret_credential(g: Harness, secret: str = "emulator-secret") -> ClientSecretCredential:
    return ClientSecretCredential(
        TENANT,
        "emulator-app",
        secret,
        authority=g.url,
        disable_instance_discovery=True,
        connection_verify=g.ca_file,
    )


def jwks_claims(g: Harness, token: str, audience: str) -> dict[str, object]:
    """Verify `token` against the emulator's published JWKS, as a product would."""
    with httpx.Client(verify=client_context(g.ca_dir)) as c:
        config = c.get(f"{g.url}/common/v2.0/.well-known/openid-configuration").json()
        keys = jwt.PyJWKSet.from_dict(c.get(config["jwks_uri"]).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience)  # type: ignore[no-any-return]


class TestClientSecret:
    """ClientSecretCredential gets an RS256 app token whose claims look like Entra's."""

    def test_token_has_app_roles_and_verifies_against_jwks(self, graph: Harness) -> None:
        with secret_credential(graph) as cred:
            token = cred.get_token(GRAPH_SCOPE)
        claims = jwks_claims(graph, token.token, "https://graph.microsoft.com")
        assert claims["iss"] == f"{graph.url}/{TENANT}/v2.0"
        assert claims["tid"] == TENANT
        assert claims["appid"] == "emulator-app"
        assert set(claims["roles"]) == set(APP_ROLES)  # type: ignore[arg-type]
        assert "scp" not in claims
        assert graph.state.issuer.issued == 1

    def test_wrong_secret_is_invalid_client(self, graph: Harness) -> None:
        with (
            secret_credential(graph, "wrong") as cred,
            pytest.raises(ClientAuthenticationError, match="AADSTS7000215"),
        ):
            cred.get_token(GRAPH_SCOPE)

    def test_wrong_tenant_is_aadsts90002(self, graph: Harness) -> None:
        with httpx.Client(verify=client_context(graph.ca_dir)) as c:
            conf = c.get(f"{graph.url}/nope/v2.0/.well-known/openid-configuration")
            tok = c.post(f"{graph.url}/nope/oauth2/v2.0/token", data={"client_id": "x"})
        assert conf.status_code == 400 and conf.json()["error_codes"] == [90002]
        assert tok.status_code == 400 and "AADSTS90002" in tok.json()["error_description"]
        assert (conf.json()["error"], tok.json()["error"]) == ("invalid_tenant", "invalid_request")

    def test_scope_without_default_is_rejected(self, graph: Harness) -> None:
        with httpx.Client(verify=client_context(graph.ca_dir)) as c:
            resp = c.post(
                f"{graph.url}/{TENANT}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "emulator-app",
                    "client_secret": "emulator-secret",
                    "scope": "User.Read",
                },
            )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"


class TestExpiry:
    """Tokens expire by the emulator's clock and lifetime; expired ones get Graph's 401."""

    def test_expired_token_is_refused(self, graph: Harness) -> None:
        token = graph.app_token()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(verify=client_context(graph.ca_dir)) as c:
            assert c.get(f"{graph.url}/v1.0/subscriptions", headers=headers).status_code == 200
            graph.control("POST", "/_emulator/advance", {"seconds": 3601})
            resp = c.get(f"{graph.url}/v1.0/subscriptions", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "InvalidAuthenticationToken"

    def test_lifetime_fault_shortens_tokens(self, graph: Harness) -> None:
        graph.control("POST", "/_emulator/faults", {"token_lifetime_s": 5})
        with secret_credential(graph) as cred:
            token = cred.get_token(GRAPH_SCOPE)
        claims = jwt.decode(token.token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 5

    def test_forged_token_is_refused(self, graph: Harness) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode({"aud": "https://graph.microsoft.com", "tid": TENANT}, key, "RS256")
        with httpx.Client(verify=client_context(graph.ca_dir)) as c:
            resp = c.get(
                f"{graph.url}/v1.0/subscriptions", headers={"Authorization": f"Bearer {forged}"}
            )
        assert resp.status_code == 401


@pytest.fixture
def client_cert(tmp_path: Path) -> Path:
    return make_client_cert(tmp_path)


def make_client_cert(directory: Path) -> Path:
    """A self-signed certificate and its key in one PEM, as CertificateCredential reads it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(key, "emulator-app")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "client.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


@pytest.fixture
def cert_graph(tmp_path: Path, client_cert: Path) -> Iterator[Harness]:
    bg, harness = start_emulator(
        tmp_path / "ca", options=fast_options(client_certificate=client_cert)
    )
    try:
        yield harness
    finally:
        bg.close()


class TestCertificate:
    """CertificateCredential's signed assertion is verified against --client-certificate."""

    def test_registered_certificate_gets_a_token(
        self, cert_graph: Harness, client_cert: Path
    ) -> None:
        cred = CertificateCredential(
            TENANT,
            "emulator-app",
            certificate_path=str(client_cert),
            authority=cert_graph.url,
            disable_instance_discovery=True,
            connection_verify=cert_graph.ca_file,
        )
        with cred:
            token = cred.get_token(GRAPH_SCOPE).token
        claims = jwks_claims(cert_graph, token, "https://graph.microsoft.com")
        assert "CallRecords.Read.All" in claims["roles"]  # type: ignore[operator]

    def test_other_certificate_is_refused(self, cert_graph: Harness, tmp_path: Path) -> None:
        other = make_client_cert(tmp_path / "other")
        cred = CertificateCredential(
            TENANT,
            "emulator-app",
            certificate_path=str(other),
            authority=cert_graph.url,
            disable_instance_discovery=True,
            connection_verify=cert_graph.ca_file,
        )
        with cred, pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
            cred.get_token(GRAPH_SCOPE)


@contextlib.contextmanager
def msal_app(g: Harness) -> Iterator[msal.ConfidentialClientApplication]:
    session = requests.Session()
    session.verify = g.ca_file
    # Else REQUESTS_CA_BUNDLE in the environment overrides session.verify (requests#3829);
    # msal's own verify= has the same problem.
    session.trust_env = False
    try:
        yield msal.ConfidentialClientApplication(
            "emulator-app",
            client_credential="emulator-secret",
            authority=f"{g.url}/{TENANT}",
            instance_discovery=False,
            http_client=session,
        )
    finally:
        session.close()


HIDDEN = r'<input type="hidden" name="([^"]+)" value="([^"]*)">'


def hidden_fields(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(HIDDEN, page)}


def sign_in(g: Harness, auth_uri: str, *, user: str | None) -> dict[str, str]:
    """Open the sign-in page and press a user's button (or Cancel); what reaches REDIRECT."""
    with httpx.Client(verify=client_context(g.ca_dir)) as c:
        page = c.get(auth_uri)
        assert page.status_code == 200 and "Alice Adams" in page.text
        fields = hidden_fields(page.text)
        fields.update({"user": user} if user else {"action": "cancel"})
        resp = c.post(auth_uri.split("?")[0], data=fields)
    if fields.get("response_mode") == "form_post":
        assert resp.status_code == 200 and f'action="{REDIRECT}"' in resp.text
        return hidden_fields(resp.text)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class TestAuthorizationCode:
    """msal's auth-code flow with PKCE works against the sign-in page and the token endpoint."""

    def test_sign_in_then_silent_refresh(self, graph: Harness) -> None:
        with msal_app(graph) as app:
            self.check_flow(graph, app)

    def check_flow(self, graph: Harness, app: msal.ConfidentialClientApplication) -> None:
        flow = app.initiate_auth_code_flow(
            DELEGATED, redirect_uri=REDIRECT, response_mode="form_post"
        )
        assert "code_challenge=" in flow["auth_uri"]
        params = sign_in(graph, flow["auth_uri"], user=ALICE)
        assert params["state"] == flow["state"]
        result = app.acquire_token_by_auth_code_flow(flow, params)
        assert "access_token" in result, result
        claims = jwks_claims(graph, result["access_token"], "https://graph.microsoft.com")
        assert claims["oid"] == ALICE and claims["preferred_username"] == "alice@contoso.com"
        assert set(str(claims["scp"]).split()) == set(DELEGATED)
        assert "roles" not in claims
        assert result["id_token_claims"]["oid"] == ALICE

        account = app.get_accounts()[0]
        assert account["username"] == "alice@contoso.com"
        issued = graph.state.issuer.issued
        again = app.acquire_token_silent_with_error(DELEGATED, account=account, force_refresh=True)
        assert again is not None and "access_token" in again, again
        assert again["access_token"] != result["access_token"]
        assert graph.state.issuer.issued == issued + 1

    @pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
    def test_query_mode_redirects_and_cancel_is_access_denied(self, graph: Harness) -> None:
        with msal_app(graph) as app:
            flow = app.initiate_auth_code_flow(DELEGATED, redirect_uri=REDIRECT)
            params = sign_in(graph, flow["auth_uri"], user=None)
            assert params["error"] == "access_denied" and params["state"] == flow["state"]
            flow = app.initiate_auth_code_flow(DELEGATED, redirect_uri=REDIRECT)
            result = app.acquire_token_by_auth_code_flow(
                flow, sign_in(graph, flow["auth_uri"], user="bob@contoso.com")
            )
        assert result["id_token_claims"]["preferred_username"] == "bob@contoso.com"

    def test_wrong_code_verifier_is_invalid_grant(self, graph: Harness) -> None:
        with msal_app(graph) as app:
            flow = app.initiate_auth_code_flow(
                DELEGATED, redirect_uri=REDIRECT, response_mode="form_post"
            )
        params = sign_in(graph, flow["auth_uri"], user=ALICE)
        with httpx.Client(verify=client_context(graph.ca_dir)) as c:
            resp = c.post(
                f"{graph.url}/{TENANT}/oauth2/v2.0/token",
                data={
                    "grant_type": "authorization_code",
                    "client_id": "emulator-app",
                    "client_secret": "emulator-secret",
                    "code": params["code"],
                    "redirect_uri": REDIRECT,
                    "code_verifier": "not-the-verifier",
                },
            )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
        assert "AADSTS501481" in resp.json()["error_description"]

    def test_admin_consent_redirects(self, graph: Harness) -> None:
        with httpx.Client(verify=client_context(graph.ca_dir)) as c:
            resp = c.get(
                f"{graph.url}/{TENANT}/adminconsent",
                params={"client_id": "emulator-app", "redirect_uri": REDIRECT, "state": "s1"},
            )
        assert resp.status_code == 302
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
        assert query == {"admin_consent": ["True"], "tenant": [TENANT], "state": ["s1"]}


class TestCallerChecks:
    """require_user_access admits the app's role or the user's own delegated scope only."""

    async def test_app_role_or_own_delegated_scope(self) -> None:
        from aiohttp import web
        from aiohttp.test_utils import TestClient, TestServer

        from emulators.graph.auth import ISSUER_KEY
        from emulators.graph.permissions import require_user_access
        from emulators.graph.tokens import SigningKey, TokenIssuer

        issuer = TokenIssuer(SigningKey(), TENANT, time.time, lambda: 3600)

        async def handler(request: web.Request) -> web.Response:
            who = require_user_access(
                request,
                request.match_info["uid"],
                app_role="OnlineMeetings.Read.All",
                scope="OnlineMeetings.Read",
            )
            return web.json_response({"user": who.user_id, "app": who.is_app})

        app = web.Application()
        app[ISSUER_KEY] = issuer
        app.router.add_get("/v1.0/users/{uid}/onlineMeetings", handler)
        base = "https://127.0.0.1"
        app_token = issuer.app_token(base)[0]
        alice, _ = issuer.user_token(base, "emulator-app", ALICE, "a", "A", ["OnlineMeetings.Read"])
        narrow, _ = issuer.user_token(base, "emulator-app", ALICE, "a", "A", ["User.Read"])
        async with TestClient(TestServer(app)) as client:

            async def status(uid: str, token: str | None) -> int:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                resp = await client.get(f"/v1.0/users/{uid}/onlineMeetings", headers=headers)
                return resp.status

            assert await status(BOB, app_token) == 200
            assert await status(ALICE, alice) == 200
            assert await status(BOB, alice) == 403
            assert await status(ALICE, narrow) == 403
            assert await status(ALICE, None) == 401


class TestScopes:
    """Delegated `scp` drops OIDC scopes and Graph's prefix; `.default` means the app's set."""

    def test_scopes_of(self) -> None:
        from emulators.graph.tokens import APP_DELEGATED_SCOPES, scopes_of

        asked = ["openid", "https://graph.microsoft.com/User.Read", "offline_access", "User.Read"]
        assert scopes_of(asked) == ("User.Read",)
        assert scopes_of(["https://graph.microsoft.com/.default", "profile"]) == (
            APP_DELEGATED_SCOPES
        )
