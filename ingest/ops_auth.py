"""Who may use the ops page: the token by a sign-in form or a bearer header; sessions and CSRF.

Sessions are random ids kept in Redis with an expiry rather than sealed cookies: signing out
ends a session on the server (a copied cookie stops working at once), and the page needs no
INGEST_SECRET_KEY besides its own token. Redis holds only the SHA-256 of a session id, so a
Redis dump opens no session; the value is the session's CSRF token. Every comparison of
something a client sent with a secret is constant-time.

A request with `Authorization: Bearer <INGEST_OPS_TOKEN>` needs no CSRF token: a browser
never adds that header by itself, so a forged cross-site form cannot carry it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from aiohttp import web

from core import defaults, keys

log = structlog.get_logger("ingest.ops_auth")

COOKIE = "ingest_ops"
COOKIE_PATH = "/ops"


@dataclass(frozen=True)
class Operator:
    """A signed-in caller: by session (with its CSRF token) or by bearer token (without)."""

    via: str
    session: str | None = None
    csrf: str | None = None


def session_key(session: str) -> str:
    return keys.key(keys.OPS_SESSION, hashlib.sha256(session.encode()).hexdigest())


class OpsAuth:
    """Checks the token, opens and ends sessions, checks CSRF tokens."""

    def __init__(self, token: str, secure: bool, ttl: int = defaults.OPS_SESSION_SECONDS) -> None:
        self._token = token.encode()
        self.secure = secure
        self.ttl = ttl

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    async def operator(self, request: web.Request, conn: aioredis.Redis) -> Operator | None:
        """The caller, or None. A wrong bearer token is refused even beside a valid cookie."""
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, given = header.partition(" ")
            if scheme.lower() == "bearer" and self.token_ok(given.strip()):
                return Operator("bearer")
            log.warning("security_event", event_type="ops_bearer_refused",
                        remote=request.remote)  # fmt: skip
            return None
        session = request.cookies.get(COOKIE)
        if not session or len(session) > 128:
            return None
        csrf = await conn.get(session_key(session))
        if csrf is None:
            return None
        return Operator("session", session, csrf.decode() if isinstance(csrf, bytes) else csrf)

    async def sign_in(self, conn: aioredis.Redis, resp: web.StreamResponse) -> None:
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await conn.set(session_key(session), csrf, ex=self.ttl)
        resp.set_cookie(
            COOKIE,
            session,
            max_age=self.ttl,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=self.secure,
        )

    async def sign_out(self, conn: aioredis.Redis, who: Operator, resp: web.StreamResponse) -> None:
        if who.session is not None:
            await conn.delete(session_key(who.session))
        resp.del_cookie(COOKIE, path=COOKIE_PATH)

    @staticmethod
    def csrf_ok(who: Operator, given: str | None) -> bool:
        if who.via == "bearer":
            return True
        if not given or who.csrf is None:
            return False
        return hmac.compare_digest(given.encode(), who.csrf.encode())
