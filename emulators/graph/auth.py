"""Who is calling a Graph data route: the bearer token checked against the emulator's key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulators.graph.errors import GraphHTTPError
from emulators.graph.tokens import TokenError, TokenIssuer

ISSUER_KEY = web.AppKey("graph_token_issuer", TokenIssuer)
CALLER_KIND = web.RequestKey("graph_caller_kind", str)  # "app" or "delegated", for the stats


@dataclass(frozen=True)
class Caller:
    """The identity behind a request's access token."""

    app_id: str
    roles: frozenset[str]  # application permissions (app-only token "roles")
    scopes: frozenset[str]  # delegated scopes (token "scp", space separated)
    user_id: str | None  # delegated: the signed-in user's directory id ("oid")

    @property
    def is_app(self) -> bool:
        return self.user_id is None


def _unauthorized(message: str) -> GraphHTTPError:
    return GraphHTTPError(
        401,
        "InvalidAuthenticationToken",
        message,
        headers={
            "WWW-Authenticate": 'Bearer realm="", authorization_uri='
            '"https://login.microsoftonline.com/common/oauth2/authorize"'
        },
    )


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    roles = claims.get("roles") or []
    scp = str(claims.get("scp") or "")
    delegated = claims.get("idtyp") == "user" or bool(scp)
    return Caller(
        app_id=str(claims.get("appid") or claims.get("azp") or ""),
        roles=frozenset(str(r) for r in roles),
        scopes=frozenset(scp.split()),
        user_id=str(claims["oid"]) if delegated and claims.get("oid") else None,
    )


def caller(request: web.Request) -> Caller:
    """The request's caller; 401 InvalidAuthenticationToken for a missing/expired/forged token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Access token is empty.")
    try:
        claims = request.app[ISSUER_KEY].verify(token.strip())
    except TokenError as exc:
        raise _unauthorized(str(exc)) from None
    who = caller_from_claims(claims)
    request[CALLER_KIND] = "app" if who.is_app else "delegated"
    return who
