"""Entra ID for the emulated tenant: discovery, JWKS and the token endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.graph.errors import identity_error
from emulators.graph.tokens import (
    CLIENT_ID,
    CLIENT_SECRET,
    GRAPH_AUDIENCES,
    OIDC_SCOPES,
    TokenIssuer,
    scopes_of,
)

if TYPE_CHECKING:
    from emulators.graph.world import World

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CODE_LIFETIME_S = 600


def authority_of(request: web.Request) -> str:
    """The identity root as the caller reached it, e.g. `https://127.0.0.1:8443`."""
    return f"{request.scheme}://{request.host}"


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    user_id: str
    scopes: tuple[str, ...]
    nonce: str | None
    challenge: str | None
    method: str
    expires: float


@dataclass
class Identity:
    """The emulated tenant's identity provider (one per app)."""

    world: World
    issuer: TokenIssuer
    client_certificate: Path | None = None
    _codes: dict[str, Code] = field(default_factory=dict)

    def new_code(self, code: Code) -> str:
        """Remember an authorization code issued by the sign-in page; returns the code."""
        value = secrets.token_urlsafe(32)
        self._codes[value] = code
        return value

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration)
        r.add_get("/{tenant}/.well-known/openid-configuration", self.openid_configuration)
        r.add_get("/{tenant}/discovery/v2.0/keys", self.keys)
        r.add_get("/{tenant}/discovery/keys", self.keys)
        r.add_post("/{tenant}/oauth2/v2.0/token", self.token)

    # -- tenant -----------------------------------------------------------------------------
    def known_tenant(self, tenant: str) -> bool:
        t = tenant.lower()
        domains = {d.lower() for d in self.world.scenario.tenant.domains}
        return t in {self.world.tenant_id.lower(), "common", "organizations"} | domains

    def _no_tenant(self, tenant: str, error: str = "invalid_tenant") -> web.Response:
        # Discovery says invalid_tenant; the token endpoint says invalid_request.
        return identity_error(
            400,
            error,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
            aadsts=90002,
        )

    # -- discovery --------------------------------------------------------------------------
    async def openid_configuration(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self.known_tenant(tenant):
            return self._no_tenant(tenant)
        base = authority_of(request)
        root = f"{base}/{tenant}"
        return web.json_response(
            {
                "issuer": self.issuer.issuer(base),
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "userinfo_endpoint": f"{base}/oidc/userinfo",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "code_challenge_methods_supported": ["plain", "S256"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "name",
                    "tid",
                    "oid",
                    "preferred_username",
                    "ver",
                ],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "microsoftonline.com",
                "request_uri_parameter_supported": False,
            }
        )

    async def keys(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self.known_tenant(tenant):
            return self._no_tenant(tenant)
        return web.json_response(self.issuer.key.jwks())

    # -- token ------------------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self.known_tenant(tenant):
            return self._no_tenant(tenant, "invalid_request")
        form = dict(await request.post())
        data = {k: str(v) for k, v in form.items()}
        client_id = data.get("client_id", "")
        if not client_id and request.headers.get("Authorization", "").startswith("Basic "):
            raw = base64.b64decode(request.headers["Authorization"][6:]).decode()
            client_id, _, data["client_secret"] = raw.partition(":")
        if client_id != CLIENT_ID:
            return identity_error(
                400,
                "unauthorized_client",
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.world.tenant_id}'.",
                aadsts=700016,
            )
        failure = self._authenticate_client(data, str(request.url.with_query(None)))
        if failure is not None:
            return failure
        grant = data.get("grant_type", "")
        if grant == "client_credentials":
            return self._client_credentials(request, data)
        if grant == "authorization_code":
            return self._authorization_code(request, data)
        if grant == "refresh_token":
            return self._refresh(request, data)
        return identity_error(
            400,
            "unsupported_grant_type",
            f"The provided value for the input parameter 'grant_type' is not valid: {grant!r}.",
        )

    def _authenticate_client(self, data: dict[str, str], endpoint: str) -> web.Response | None:
        if data.get("client_assertion_type") == JWT_BEARER:
            return self._check_assertion(data.get("client_assertion", ""), endpoint)
        secret = data.get("client_secret")
        if secret is None:
            return identity_error(
                401,
                "invalid_client",
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
                aadsts=7000218,
            )
        if not hmac.compare_digest(secret.encode(), CLIENT_SECRET.encode()):
            return identity_error(
                401,
                "invalid_client",
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{CLIENT_ID}'.",
                aadsts=7000215,
            )
        return None

    def _check_assertion(self, assertion: str, endpoint: str) -> web.Response | None:
        def bad(why: str, code: int = 700027) -> web.Response:
            return identity_error(401, "invalid_client", why, aadsts=code)

        if self.client_certificate is None:
            return bad(
                "The certificate with identifier used to sign the client assertion is "
                "not registered on application.",
                700027,
            )
        public_key = x509.load_pem_x509_certificate(
            self.client_certificate.read_bytes()
        ).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            return bad("The registered certificate must hold an RSA key.")
        try:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256", "PS256"],
                audience=endpoint,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidAudienceError:
            return bad(f"The audience claim must be the token endpoint {endpoint}.", 700021)
        except jwt.ExpiredSignatureError:
            return bad("The client assertion has expired.", 700024)
        except jwt.PyJWTError:
            return bad("Client assertion contains an invalid signature.")
        if claims.get("iss") != CLIENT_ID or claims.get("sub") != CLIENT_ID:
            return bad("The iss and sub claims must be the client id.", 700023)
        return None

    def _client_credentials(self, request: web.Request, data: dict[str, str]) -> web.Response:
        scopes = data.get("scope", "").split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return identity_error(
                400,
                "invalid_scope",
                f"The provided value for scope {data.get('scope', '')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
                aadsts=1002012,
            )
        if scopes[0][: -len("/.default")].rstrip("/") not in GRAPH_AUDIENCES:
            return identity_error(
                400,
                "invalid_resource",
                f"The resource principal named {scopes[0]} was not found in the tenant.",
                aadsts=500011,
            )
        token, life = self.issuer.app_token(authority_of(request))
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": life,
                "ext_expires_in": life,
                "access_token": token,
            }
        )

    def _user_tokens(
        self,
        request: web.Request,
        data: dict[str, str],
        user_id: str,
        scopes: tuple[str, ...],
        nonce: str | None,
    ) -> web.Response:
        user = self.world.user(user_id)
        if user is None:
            return identity_error(400, "invalid_grant", "The user account does not exist.", 50034)
        base = authority_of(request)
        access, life = self.issuer.user_token(base, CLIENT_ID, user.id, user.upn, user.name, scopes)
        granted = list(scopes_of(scopes)) + [s for s in scopes if s.lower() in OIDC_SCOPES]
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(granted),
            "expires_in": life,
            "ext_expires_in": life,
            "access_token": access,
        }
        lowered = {s.lower() for s in scopes}
        if "openid" in lowered:
            body["id_token"] = self.issuer.id_token(
                base, CLIENT_ID, user.id, user.upn, user.name, nonce
            )
        if "offline_access" in lowered:
            body["refresh_token"] = self.issuer.refresh_token(
                {"client_id": CLIENT_ID, "user_id": user.id, "scopes": list(scopes)}
            )
        if data.get("client_info") == "1":
            body["client_info"] = self.issuer.client_info(user.id)
        return web.json_response(body)

    def _authorization_code(self, request: web.Request, data: dict[str, str]) -> web.Response:
        code = self._codes.pop(data.get("code", ""), None)
        if code is None or code.expires < self.issuer.clock():
            return identity_error(
                400,
                "invalid_grant",
                "The provided authorization code or refresh token has expired or was already "
                "redeemed. Send a new interactive authorization request.",
                aadsts=70008,
            )
        if data.get("redirect_uri") != code.redirect_uri:
            return identity_error(
                400,
                "invalid_grant",
                "The reply URL specified in the request does not match the reply URL used to "
                "obtain the authorization code.",
                aadsts=50148,
            )
        if code.challenge is not None and not _pkce_ok(
            data.get("code_verifier", ""), code.challenge, code.method
        ):
            return identity_error(
                400,
                "invalid_grant",
                "The code_verifier does not match the code_challenge supplied in the "
                "authorization request.",
                aadsts=501481,
            )
        return self._user_tokens(request, data, code.user_id, code.scopes, code.nonce)

    def _refresh(self, request: web.Request, data: dict[str, str]) -> web.Response:
        grant = self.issuer.redeem_refresh(data.get("refresh_token", ""))
        if grant is None:
            return identity_error(
                400,
                "invalid_grant",
                "The refresh token has expired or is invalid.",
                aadsts=700082,
            )
        held = list(grant["scopes"])
        wanted = tuple(data.get("scope", "").split()) or tuple(held)
        extra = set(scopes_of(wanted)) - set(scopes_of(held))
        if extra:
            return identity_error(
                400,
                "invalid_grant",
                f"The user or administrator has not consented to use the application with "
                f"scopes {' '.join(sorted(extra))}.",
                aadsts=65001,
            )
        return self._user_tokens(request, data, grant["user_id"], wanted, None)


def _pkce_ok(verifier: str, challenge: str, method: str) -> bool:
    if method.upper() == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        expected = verifier
    return bool(verifier) and hmac.compare_digest(expected, challenge)
