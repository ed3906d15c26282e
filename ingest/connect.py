"""The ECI connect flow's HTTP side: `/auth/connect`, `/auth/callback`, disconnect, admin consent.

The flow's secrets (PKCE verifier, nonce, state) travel in a sealed, short-lived, HttpOnly
cookie, so a callback is honoured only in the browser that started the flow. msal and Redis
calls run in threads (workers/oauth.py): the notification path never waits on them.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
from typing import Any

import structlog
from aiohttp import web

from core import vault
from core.exceptions import ConfigurationError, ConnectFailed, SealBroken, SealExpired
from core.settings import Settings
from workers import oauth

log = structlog.get_logger("ingest.connect")

STATE_COOKIE = "ingest_connect"
USER_COOKIE = "ingest_user"
STATE_MAX_AGE = 600  # the sign-in must come back within 10 minutes
USER_MAX_AGE = 3600  # how long the success page's Disconnect button works
COOKIE_PATH = "/auth"


def add_routes(app: web.Application, settings_key: web.AppKey[Settings]) -> None:
    flow = Flow(settings_key)
    app.router.add_get("/auth/connect", flow.connect)
    app.router.add_get("/auth/callback", flow.callback)
    app.router.add_post("/auth/disconnect", flow.disconnect)
    app.router.add_get("/auth/admin-consent", flow.admin_consent)


class Flow:
    """The handlers; thin: check the cookie, run the blocking part in a thread, answer a page."""

    def __init__(self, settings_key: web.AppKey[Settings]) -> None:
        self.settings_key = settings_key

    def _seal(self, settings: Settings, doc: dict[str, Any]) -> str:
        sealer = vault.Vault(settings.require_secret_key(), vault.CONNECT_STATE)
        return sealer.seal(json.dumps(doc, separators=(",", ":")).encode()).decode()

    def _open(self, settings: Settings, raw: str | None, kind: str, max_age: int) -> Any:
        if not raw:
            raise ConnectFailed(
                "connect_state_missing",
                "Sign-in session not found",
                "This sign-in was not started in this browser, or its cookie "
                "was blocked. Please start again.",
            )
        sealer = vault.Vault(settings.require_secret_key(), vault.CONNECT_STATE)
        try:
            doc = json.loads(sealer.open(raw.encode(), max_age=max_age))
        except SealExpired:
            raise ConnectFailed(
                "connect_state_expired",
                "Sign-in took too long",
                "This sign-in expired. Please start again.",
            ) from None
        except SealBroken:
            log.warning("security_event", event_type="connect_state_invalid")
            raise ConnectFailed(
                "connect_state_invalid",
                "Sign-in could not be verified",
                "This sign-in could not be verified. Please start again.",
            ) from None
        if not isinstance(doc, dict) or doc.get("kind") != kind:
            raise ConnectFailed(
                "connect_state_invalid",
                "Sign-in could not be verified",
                "This sign-in could not be verified. Please start again.",
            )
        return doc

    def _cookie(
        self, resp: web.StreamResponse, settings: Settings, name: str, value: str, max_age: int
    ) -> None:
        resp.set_cookie(
            name,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Lax",
            secure=_secure(settings),
        )

    async def connect(self, request: web.Request) -> web.StreamResponse:
        settings = request.app[self.settings_key]
        try:
            url, flow = await asyncio.to_thread(oauth.start, settings)
        except ConfigurationError as exc:
            return _not_configured(exc)
        except Exception as exc:  # the authority is unreachable or refuses
            log.error("connect_start_failed", error=type(exc).__name__)
            return page(
                "Microsoft sign-in is unreachable",
                "<p>The sign-in service could not be reached. Please try again later.</p>",
                502,
            )
        resp = web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
        sealed = self._seal(settings, {"kind": "user", "flow": flow})
        self._cookie(resp, settings, STATE_COOKIE, sealed, STATE_MAX_AGE)
        log.info("connect_started")
        return resp

    async def admin_consent(self, request: web.Request) -> web.StreamResponse:
        settings = request.app[self.settings_key]
        state = secrets.token_urlsafe(16)
        try:
            url = oauth.admin_consent_url(settings, state)
            sealed = self._seal(settings, {"kind": "admin", "state": state})
        except ConfigurationError as exc:
            return _not_configured(exc)
        resp = web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
        self._cookie(resp, settings, STATE_COOKIE, sealed, STATE_MAX_AGE)
        log.info("admin_consent_started")
        return resp

    async def callback(self, request: web.Request) -> web.StreamResponse:
        settings = request.app[self.settings_key]
        try:
            oauth.require_connect(settings)
        except ConfigurationError as exc:
            return _not_configured(exc)
        params = {k: v for k, v in request.query.items()}
        try:
            resp = await self._finish(settings, request.cookies.get(STATE_COOKIE), params)
        except ConnectFailed as exc:
            log.warning(exc.event, title=exc.title)
            resp = page(exc.title, f"<p>{html.escape(exc.detail)}</p>{_AGAIN}", exc.status)
        except Exception as exc:  # a readable page, never a stack trace
            log.error("connect_failed", error=type(exc).__name__, exc_info=True)
            resp = page(
                "Connecting failed",
                f"<p>Something went wrong on our side. Please try again later.</p>{_AGAIN}",
                500,
            )
        resp.del_cookie(STATE_COOKIE, path=COOKIE_PATH)
        return resp

    async def _finish(
        self, settings: Settings, cookie: str | None, params: dict[str, str]
    ) -> web.Response:
        if "error" in params:
            error = params["error"][:64]
            described = params.get("error_description", "")[:200]
            log.info("connect_denied", error=error, description=described)
            if error in ("access_denied", "consent_required"):
                raise ConnectFailed(
                    "connect_denied",
                    "Access was not granted",
                    "The sign-in was cancelled or consent was declined, so nothing was stored.",
                )
            raise ConnectFailed(
                "connect_error",
                "Sign-in failed",
                f"Microsoft reported: {error}. {params.get('error_description', '')[:300]}",
            )
        doc = self._open(
            settings, cookie, "admin" if "admin_consent" in params else "user", STATE_MAX_AGE
        )
        expected = doc["state"] if doc["kind"] == "admin" else doc["flow"]["state"]
        if not secrets.compare_digest(str(params.get("state", "")), str(expected)):
            log.warning("security_event", event_type="connect_state_mismatch")
            raise ConnectFailed(
                "connect_state_mismatch",
                "Sign-in could not be verified",
                "The reply does not belong to this sign-in. Please start again.",
            )
        if doc["kind"] == "admin":
            return self._admin_done(settings, params)
        done = await asyncio.to_thread(oauth.finish, settings, doc["flow"], params)
        user = done.user
        note = {
            "created": "Your meeting transcripts subscription is active.",
            "kept": "Your meeting transcripts subscription is active.",
            "tenant-wide": "Your organisation's transcripts subscription covers your meetings.",
        }.get(
            done.subscription,
            "Your meetings subscription could not be created just now; "
            "an administrator can run <code>ingest subscriptions ensure</code>.",
        )
        body = (
            f"<p><strong>{html.escape(user.name or user.upn)}</strong> "
            f"({html.escape(user.upn)}) is connected.</p>"
            "<p>Transcripts of the Teams meetings you organise with people outside your company "
            f"will be brought into Salesforce. Recordings stay on Teams.</p><p>{note}</p>"
            '<form method="post" action="/auth/disconnect"><button>Disconnect</button></form>'
        )
        resp = page("Connected", body)
        sealed = self._seal(settings, {"kind": "session", "uid": user.id})
        self._cookie(resp, settings, USER_COOKIE, sealed, USER_MAX_AGE)
        return resp

    def _admin_done(self, settings: Settings, params: dict[str, str]) -> web.Response:
        tenant = params.get("tenant", "").lower()
        if params.get("admin_consent", "").lower() != "true":
            raise ConnectFailed(
                "admin_consent_denied",
                "Admin consent not granted",
                "The administrator did not grant consent.",
            )
        if tenant != (settings.graph_tenant_id or "").lower():
            log.warning(
                "security_event", event_type="admin_consent_wrong_tenant", tenant_id=tenant[:64]
            )
            raise ConnectFailed(
                "admin_consent_wrong_tenant",
                "Wrong organisation",
                "Consent was granted in another organisation.",
                403,
            )
        log.info("admin_consent_granted", tenant_id=tenant)
        return page(
            "Admin consent granted",
            "<p>The application permission <code>CallRecords.Read.All</code> is granted "
            "for your organisation.</p>",
        )

    async def disconnect(self, request: web.Request) -> web.StreamResponse:
        settings = request.app[self.settings_key]
        try:
            settings.require_secret_key()
            doc = self._open(settings, request.cookies.get(USER_COOKIE), "session", USER_MAX_AGE)
            gone = await asyncio.to_thread(oauth.disconnect, settings, str(doc["uid"]))
        except ConfigurationError as exc:
            return _not_configured(exc)
        except ConnectFailed as exc:
            log.warning("disconnect_refused", reason=exc.event)
            return page(
                "Sign in to disconnect",
                "<p>To disconnect, sign in again first and press Disconnect on the page "
                f"that follows.</p>{_AGAIN}",
                400,
            )
        who = html.escape(gone.upn) if gone is not None else "Your account"
        resp = page(
            "Disconnected",
            f"<p>{who} is disconnected: its tokens and meeting subscription were removed.</p>",
        )
        resp.del_cookie(USER_COOKIE, path=COOKIE_PATH)
        return resp


def _secure(settings: Settings) -> bool:
    return (settings.public_url or "").startswith("https://")


def _not_configured(exc: ConfigurationError) -> web.Response:
    log.error("connect_not_configured", variable=exc.variable, reason=exc.reason)
    return page(
        "Connecting is not set up yet",
        "<p>The connect flow is not configured on this server. An operator must set "
        f"<code>{html.escape(exc.variable)}</code>: {html.escape(exc.reason)}.</p>",
        503,
    )


_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
_AGAIN = '<p><a href="/auth/connect">Start again</a></p>'
_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;color:#1d1d1f}"
    "main{max-width:520px;margin:10vh auto;background:#fff;padding:28px 36px;border-radius:8px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:22px}"
    "button{padding:8px 16px;font-size:15px;cursor:pointer}code{font-size:13px}"
)


def page(title: str, body: str, status: int = 200) -> web.Response:
    """A small HTML page; `body` is trusted markup (callers escape what they echo)."""
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f'</title><meta name="viewport" content="width=device-width"><style>{_STYLE}</style>'
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    resp = web.Response(text=text, content_type="text/html", status=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    )
    return resp
