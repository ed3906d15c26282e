"""The emulator's signing key, its JWKS, and the Entra-style JWTs it issues and verifies."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.scenario import APP_PERMISSIONS

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
GRAPH_RESOURCE = "https://graph.microsoft.com"
CLIENT_ID = "emulator-app"
CLIENT_SECRET = "emulator-secret"  # noqa: S105  (the emulator's documented test secret)
APP_ROLES = APP_PERMISSIONS  # the roles of app tokens when the scenario names none
# The delegated permissions of the app registration (DESIGN §6), granted for `.default`.
APP_DELEGATED_SCOPES = (
    "Calendars.Read",
    "Files.Read",
    "OnlineMeetingArtifact.Read.All",
    "OnlineMeetings.Read",
    "OnlineMeetingTranscript.Read.All",
    "User.Read",
)
CHANGE_TRACKING_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
# Scopes that are about the sign-in itself and never appear in an access token's `scp`.
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


class TokenError(ValueError):
    """A token that is missing, forged, expired or meant for someone else."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass
class SigningKey:
    """An RSA key made at start; its public half is published at the JWKS endpoints."""

    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    @property
    def kid(self) -> str:
        nums = self.key.public_key().public_numbers()
        return b64url(hashlib.sha256(nums.n.to_bytes(256, "big")).digest()[:20])

    def jwks(self) -> dict[str, Any]:
        nums = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _int_b64(nums.n),
            "e": _int_b64(nums.e),
        }
        return {"keys": [jwk]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )


def principal_id(app_id: str) -> str:
    """A stable service principal id for an app in the emulated tenant."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sp:" + app_id))


def scopes_of(requested: Iterable[str]) -> tuple[str, ...]:
    """Delegated scopes as `scp` holds them: Graph's prefix stripped, OIDC scopes dropped.

    `.default` stands for every delegated permission the app registration declares.
    """
    out: list[str] = []
    for scope in requested:
        name = scope.rsplit("/", 1)[-1] if scope.lower().startswith("https://") else scope
        names = APP_DELEGATED_SCOPES if name == ".default" else (name,)
        out += [n for n in names if n and n.lower() not in OIDC_SCOPES and n not in out]
    return tuple(out)


class TokenIssuer:
    """Issues app and delegated access tokens, id tokens and refresh tokens; verifies them."""

    def __init__(
        self,
        key: SigningKey,
        tenant_id: str,
        clock: Callable[[], float],
        lifetime: Callable[[], float],
        roles: Iterable[str] = APP_ROLES,
    ) -> None:
        self.key = key
        self.roles = tuple(roles)  # what the admin consented to: app tokens carry only these
        self.tenant_id = tenant_id
        self.clock = clock
        self.lifetime = lifetime
        self.issued = 0
        self._refresh: dict[str, dict[str, Any]] = {}

    def issuer(self, authority: str) -> str:
        return f"{authority.rstrip('/')}/{self.tenant_id}/v2.0"

    def _base(self, authority: str, lifetime: float | None = None) -> dict[str, Any]:
        now = int(self.clock())
        life = int(self.lifetime() if lifetime is None else lifetime)
        return {
            "iss": self.issuer(authority),
            "tid": self.tenant_id,
            "iat": now,
            "nbf": now,
            "exp": now + life,
            "uti": b64url(uuid.uuid4().bytes),
            "ver": "2.0",
        }

    def app_token(self, authority: str, client_id: str = CLIENT_ID) -> tuple[str, int]:
        """An app-only access token for Graph with the consented roles; (jwt, expires_in)."""
        claims = self._base(authority)
        sp = principal_id(client_id)
        claims.update(
            {
                "aud": GRAPH_RESOURCE,
                "appid": client_id,
                "azp": client_id,
                "idtyp": "app",
                "oid": sp,
                "sub": sp,
                "roles": list(self.roles),
            }
        )
        self.issued += 1
        return self.key.sign(claims), claims["exp"] - claims["iat"]

    def user_token(
        self,
        authority: str,
        client_id: str,
        user_id: str,
        upn: str,
        name: str,
        scopes: Iterable[str],
    ) -> tuple[str, int]:
        """A delegated access token for Graph: `scp` = the requested scopes, `oid` = the user."""
        claims = self._base(authority)
        claims.update(
            {
                "aud": GRAPH_RESOURCE,
                "appid": client_id,
                "azp": client_id,
                "idtyp": "user",
                "oid": user_id,
                "sub": user_id,
                "name": name,
                "preferred_username": upn,
                "upn": upn,
                "scp": " ".join(scopes_of(scopes)),
            }
        )
        self.issued += 1
        return self.key.sign(claims), claims["exp"] - claims["iat"]

    def id_token(
        self,
        authority: str,
        client_id: str,
        user_id: str,
        upn: str,
        name: str,
        nonce: str | None,
    ) -> str:
        claims = self._base(authority)
        claims.update(
            {
                "aud": client_id,
                "oid": user_id,
                "sub": user_id,
                "name": name,
                "preferred_username": upn,
            }
        )
        if nonce:
            claims["nonce"] = nonce
        return self.key.sign(claims)

    def validation_token(self, authority: str, app_id: str) -> str:
        """A rich notification's validation token: published by Graph's change tracking app."""
        claims = self._base(authority, lifetime=3600)
        sp = principal_id(CHANGE_TRACKING_APP_ID)
        publisher = CHANGE_TRACKING_APP_ID
        claims.update(
            {
                "aud": app_id,
                "azp": publisher,
                "appid": publisher,
                "azpacr": "2",
                "oid": sp,
                "sub": sp,
            }
        )
        return self.key.sign(claims)

    def refresh_token(self, grant: dict[str, Any]) -> str:
        """An opaque refresh token remembering the user, client and scopes it was granted for."""
        token = b64url(uuid.uuid4().bytes + uuid.uuid4().bytes)
        self._refresh[token] = dict(grant)
        return token

    def redeem_refresh(self, token: str) -> dict[str, Any] | None:
        return self._refresh.get(token)

    def client_info(self, user_id: str) -> str:
        raw = json.dumps({"uid": user_id, "utid": self.tenant_id}).encode()
        return b64url(raw)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of an access token this emulator issued for Graph, or TokenError."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.key.kid:
                raise TokenError("the token was not signed by this emulator")
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key.key.public_key(),
                algorithms=["RS256"],
                audience=list(GRAPH_AUDIENCES),
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token is not valid: {exc}") from None
        now = self.clock()
        if claims.get("exp", 0) <= now:
            raise TokenError("Lifetime validation failed, the token is expired.")
        if claims.get("nbf", 0) > now + 300:
            raise TokenError("the token is not yet valid")
        if claims.get("tid") != self.tenant_id:
            raise TokenError("the token belongs to another tenant")
        return claims
