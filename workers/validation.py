"""The checks on one `validationTokens` JWT of a rich notification (graph.md §7), I/O aside.

A token is genuine when it is signed (RS256) by a key of the identity platform's JWKS, is
within its `nbf`..`exp` window, is addressed (`aud`) to our app, was issued for an allowed
tenant by that tenant's issuer, and was published by Graph's change-tracking application
(`azp` in a v2.0 token, `appid` in a v1.0 one). The receiver runs these checks on every
request that carries `encryptedContent` (ingest/tokens.py fetches the keys); a failing
check names itself in `TokenRejected.why`, which the receiver logs.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from core.exceptions import BadInput
from core.settings import Settings

CHANGE_TRACKING_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
# Microsoft's own token validators allow five minutes of clock skew by default.
CLOCK_SKEW_SECONDS = 300
MAX_TOKEN_CHARS = 8192
MAX_TOKENS = 32  # Graph sends one per app+tenant pair in the POST
JWKS_PATH = "/common/discovery/v2.0/keys"
_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "bad_algorithm"),
)


class TokenRejected(BadInput):
    """A validation token that fails a check; `why` is a short code for the logs."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(f"validation token rejected: {why}")


@dataclass(frozen=True)
class Expected:
    """What a genuine token says: our app id, the tenants we serve, our identity authority."""

    audience: str | None
    tenants: frozenset[str]
    authority: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Expected:
        tenants = {t.lower() for t in settings.graph_allowed_tenants}
        if settings.graph_tenant_id:
            tenants.add(settings.graph_tenant_id.lower())
        return cls(settings.graph_client_id, frozenset(tenants), settings.graph_authority)

    def issuers(self, tenant: str) -> frozenset[str]:
        """The v1.0 and v2.0 issuers of a tenant (the configured authority's, for clouds and
        the emulator, beside the public cloud's)."""
        return frozenset({
            f"https://sts.windows.net/{tenant}/",
            f"https://login.microsoftonline.com/{tenant}/v2.0",
            f"{self.authority.rstrip('/').lower()}/{tenant}/v2.0",
        })  # fmt: skip


def key_id(token: object) -> str:
    """The `kid` of a token's header, or TokenRejected before anything else is looked at."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("malformed") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("no_key_id")
    return kid


def check(token: str, key: Any, expected: Expected) -> str:
    """The tenant id of a genuine token signed with `key`; TokenRejected otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=expected.audience,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "nbf", "iss", "aud", "tid"]},
        )
    except jwt.PyJWTError as exc:
        why = next((code for kind, code in _ERRORS if isinstance(exc, kind)), "malformed")
        raise TokenRejected(why) from None
    tenant = claims["tid"]
    if not isinstance(tenant, str):
        raise TokenRejected("malformed")
    tenant = tenant.lower()
    if tenant not in expected.tenants:
        raise TokenRejected("tenant_not_allowed")
    issuer = claims["iss"]
    if not isinstance(issuer, str) or issuer.lower() not in expected.issuers(tenant):
        raise TokenRejected("wrong_issuer")
    publisher_claim = {"1.0": "appid", "2.0": "azp"}.get(str(claims.get("ver")))
    if publisher_claim is None:
        raise TokenRejected("unknown_version")
    if claims.get(publisher_claim) != CHANGE_TRACKING_APP_ID:
        raise TokenRejected("wrong_publisher")
    return tenant


def signing_keys(jwks: object) -> dict[str, Any]:
    """The RSA signing keys of a JWKS document, by `kid`; keys of other kinds are skipped."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise BadInput("the JWKS document has no 'keys' array")
    out: dict[str, Any] = {}
    for entry in keys:
        if not isinstance(entry, Mapping) or entry.get("kty") != "RSA":
            continue
        if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
            continue
        try:
            out[entry["kid"]] = jwt.PyJWK.from_dict(dict(entry), algorithm="RS256").key
        except jwt.PyJWTError:
            continue
    return out


class TokenChecker:
    """The same checks, synchronously, for a job stored with its tokens by an older receiver."""

    def __init__(self, settings: Settings) -> None:
        self.expected = Expected.from_settings(settings)
        ctx = None
        if settings.ca_bundle is not None:
            ctx = ssl.create_default_context(cafile=str(settings.ca_bundle))
        self.jwks = jwt.PyJWKClient(
            f"{settings.graph_authority}{JWKS_PATH}", cache_keys=True, timeout=10, ssl_context=ctx
        )

    def check(self, tokens: Iterable[Any]) -> None:
        """Raise BadInput unless every token passes every check."""
        for token in tokens:
            key_id(token)
            try:
                key = self.jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWTError:
                raise TokenRejected("unknown_key") from None
            check(token, key, self.expected)
