"""The OAuth token endpoint (client credentials, JWT bearer) and the sessions it hands out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import BasicAuth, web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from emulators.salesforce.records import INTEGRATION_USER_ID

CLIENT_ID = "emulator-app"
CLIENT_SECRET = "emulator-secret"  # noqa: S105 - the emulator's published test secret
ORG_ID = "00D5g0000000001EAA"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


def load_public_key(path: Path) -> RSAPublicKey:
    """The RSA key of a PEM certificate (as uploaded to a connected app) or public key."""
    data = path.read_bytes()
    key = (
        x509.load_pem_x509_certificate(data).public_key()
        if b"BEGIN CERTIFICATE" in data
        else load_pem_public_key(data)
    )
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"{path} does not hold an RSA key")
    return key


@dataclass
class Sessions:
    """Access tokens and when they lapse; `expire_all` is the session-expiry fault."""

    lifetime_s: float = 7200.0
    clock: Callable[[], float] = time.monotonic
    _expiry: dict[str, float] = field(default_factory=dict)

    def issue(self) -> str:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        self._expiry[token] = self.clock() + self.lifetime_s
        return token

    def valid(self, token: str) -> bool:
        expiry = self._expiry.get(token)
        if expiry is None or expiry <= self.clock():
            self._expiry.pop(token, None)
            return False
        return True

    def expire_all(self) -> int:
        count = len(self._expiry)
        self._expiry.clear()
        return count


def _error(code: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)


class TokenEndpoint:
    """`POST /services/oauth2/token` as Salesforce answers it."""

    def __init__(self, sessions: Sessions, jwt_key: RSAPublicKey | None = None) -> None:
        self.sessions = sessions
        self.jwt_key = jwt_key
        self.issued = 0

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        if grant == "client_credentials":
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
            header = request.headers.get("Authorization", "")
            if header.startswith("Basic "):
                try:
                    basic = BasicAuth.decode(header)
                except ValueError:
                    return _error("invalid_client", "invalid client credentials")
                client_id, secret = basic.login, basic.password
            if not (
                hmac.compare_digest(client_id.encode(), CLIENT_ID.encode())
                and hmac.compare_digest(secret.encode(), CLIENT_SECRET.encode())
            ):
                return _error("invalid_client", "invalid client credentials")
            return self._grant(request)
        if grant == JWT_GRANT:
            problem = self._check_assertion(str(form.get("assertion", "")), request)
            if problem is not None:
                return problem
            return self._grant(request)
        return _error("unsupported_grant_type", "grant type not supported")

    def _check_assertion(self, assertion: str, request: web.Request) -> web.Response | None:
        if self.jwt_key is None:
            return _error("invalid_grant", "no certificate is configured for JWT bearer")
        origin = str(request.url.origin())
        audiences = [origin, origin + "/", *LOGIN_AUDIENCES]
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                self.jwt_key,
                algorithms=["RS256"],
                audience=audiences,
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            return _error("invalid_grant", "expired authorization code")
        except jwt.InvalidAudienceError:
            return _error("invalid_grant", "audience is invalid")
        except jwt.PyJWTError:
            return _error("invalid_grant", "invalid assertion")
        if claims["iss"] != CLIENT_ID:
            return _error("invalid_client_id", "client identifier invalid")
        if not str(claims["sub"]):
            return _error("invalid_grant", "user hasn't approved this consumer")
        return None

    def _grant(self, request: web.Request) -> web.Response:
        base = str(request.url.origin())
        identity = f"{base}/id/{ORG_ID}/{INTEGRATION_USER_ID}"
        issued_at = str(int(time.time() * 1000))
        signature = base64.b64encode(
            hmac.new(
                CLIENT_SECRET.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        self.issued += 1
        return web.json_response(
            {
                "access_token": self.sessions.issue(),
                "signature": signature,
                "scope": "api",
                "instance_url": base,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )
