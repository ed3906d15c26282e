"""Entra ID's sign-in page for the emulated tenant (authorize), and admin consent."""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from emulators.graph.identity import CODE_LIFETIME_S, Code, Identity
from emulators.graph.tokens import CLIENT_ID, scopes_of


@dataclass
class SignIn:
    """`/authorize` lists the scenario's users as buttons; pressing one redirects with a code."""

    identity: Identity

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/{tenant}/oauth2/v2.0/authorize", self.authorize)
        r.add_post("/{tenant}/oauth2/v2.0/authorize", self.sign_in)
        r.add_get("/{tenant}/adminconsent", self.admin_consent)

    async def authorize(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self.identity.known_tenant(tenant):
            return _page("Sign in", "<p>AADSTS90002: Tenant not found.</p>", status=400)
        q = request.query
        if q.get("client_id") != CLIENT_ID:
            why = f"AADSTS700016: Application with identifier '{q.get('client_id', '')}' was not "
            return _page("Sign in", f"<p>{html.escape(why)}found in the directory.</p>", 400)
        if q.get("response_type", "code") != "code" or not q.get("redirect_uri"):
            return _page(
                "Sign in",
                "<p>AADSTS900144: response_type=code and redirect_uri are required.</p>",
                400,
            )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in q.items()
        )
        hint = q.get("login_hint", "").lower()
        rows = []
        for user in self.identity.world.scenario.users:
            mark = " autofocus" if user.upn.lower() == hint else ""
            rows.append(
                f'<button name="user" value="{html.escape(user.id)}"{mark}>'
                f"<strong>{html.escape(user.name)}</strong><br><small>{html.escape(user.upn)}"
                "</small></button>"
            )
        scopes = " ".join(scopes_of(q.get("scope", "").split())) or "(none)"
        body = (
            f"<p>Sign in to <b>{html.escape(CLIENT_ID)}</b>. It asks for: "
            f"<code>{html.escape(scopes)}</code></p>"
            f'<form method="post">{hidden}{"".join(rows)}'
            '<button name="action" value="cancel" class="cancel">Cancel</button></form>'
        )
        return _page("Sign in to your account", body)

    async def sign_in(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        redirect_uri, state = form.get("redirect_uri", ""), form.get("state")
        if form.get("client_id") != CLIENT_ID or not redirect_uri:
            return _page("Sign in", "<p>AADSTS900144: invalid request.</p>", 400)
        params: dict[str, str]
        user = self.identity.world.user(form.get("user", ""))
        if form.get("action") == "cancel" or user is None:
            params = {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
            }
        else:
            code = self.identity.new_code(
                Code(
                    client_id=CLIENT_ID,
                    redirect_uri=redirect_uri,
                    user_id=user.id,
                    scopes=tuple(form.get("scope", "").split()),
                    nonce=form.get("nonce"),
                    challenge=form.get("code_challenge"),
                    method=form.get("code_challenge_method", "plain"),
                    expires=self.identity.issuer.clock() + CODE_LIFETIME_S,
                )
            )
            params = {"code": code, "session_state": secrets.token_hex(16)}
        if state is not None:
            params["state"] = state
        if form.get("response_mode") == "form_post":
            return _form_post(redirect_uri, params)
        return _redirect(redirect_uri, params)

    async def admin_consent(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        q = request.query
        redirect_uri = q.get("redirect_uri", "")
        if not self.identity.known_tenant(tenant):
            return _page("Admin consent", "<p>AADSTS90002: Tenant not found.</p>", 400)
        if q.get("client_id") != CLIENT_ID or not redirect_uri:
            return _page("Admin consent", "<p>AADSTS700016: unknown application.</p>", 400)
        params = {"admin_consent": "True", "tenant": self.identity.world.tenant_id}
        if "state" in q:
            params["state"] = q["state"]
        return _redirect(redirect_uri, params)


def _redirect(uri: str, params: dict[str, str]) -> web.Response:
    sep = "&" if "?" in uri else "?"
    raise web.HTTPFound(uri + sep + urlencode(params))


def _form_post(uri: str, params: dict[str, str]) -> web.Response:
    """response_mode=form_post: a page that POSTs the result to the redirect URI at once."""
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
    )
    body = (
        f'<form method="post" action="{html.escape(uri)}">{fields}'
        "<noscript><button>Continue</button></noscript></form>"
        "<script>document.forms[0].submit()</script>"
    )
    return _page("Working...", body)


_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}"
    "main{max-width:420px;margin:8vh auto;background:#fff;padding:32px 40px;"
    "box-shadow:0 2px 6px rgba(0,0,0,.2)}h1{font-size:22px;font-weight:600}"
    "button{display:block;width:100%;text-align:left;margin:8px 0;padding:10px 12px;"
    "border:1px solid #ccc;background:#fff;cursor:pointer;font-size:15px}"
    "button:hover{background:#f3f9fd;border-color:#0067b8}"
    ".cancel{text-align:center;background:#eee}code{font-size:13px}"
)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_STYLE}</style></head><body><main><h1>{html.escape(title)}</h1>"
        f"{body}</main></body></html>"
    )
    return web.Response(text=text, content_type="text/html", status=status)
