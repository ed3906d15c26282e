"""Connects one scenario user through the connect flow, doing what a browser does.

`ingest users add` registers a user as an admin would: the product reads that user's meetings
with application permissions, which include no `Files.Read`, so their recordings get no link.
A user who connects signs in on the Graph emulator's sign-in page and grants the delegated
scopes (`Files.Read` among them), so the recording of a meeting they organised is linked.
The demo connects one user this way, over the receiver's own `/auth/connect` and
`/auth/callback`, keeping the state cookie between them as a browser does.
"""

from __future__ import annotations

import html
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse
from pathlib import Path

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class ConnectError(RuntimeError):
    """A step of the connect flow did not answer as it should."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hands each redirect back to the caller: the cookie and the next URL are read there."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _open(
    url: str, ca_file: Path, data: bytes | None = None, cookie: str = ""
) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed: status, headers (Set-Cookie joined), body."""
    tls = ssl.create_default_context(cafile=str(ca_file))
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=tls))
    req = urllib.request.Request(url, data=data, headers={"Cookie": cookie} if cookie else {})
    resp: HTTPResponse
    try:
        resp = opener.open(req, timeout=30)
    except urllib.error.HTTPError as exc:  # 3xx (not followed) and errors alike
        resp = exc  # type: ignore[assignment]
    with resp:
        headers = {k.lower(): v for k, v in resp.headers.items()}
        headers["set-cookie"] = "; ".join(resp.headers.get_all("Set-Cookie") or [])
        return resp.status, headers, resp.read().decode("utf-8", "replace")


def connect(receiver: str, user_id: str, ca_file: Path) -> str:
    """Sign `user_id` in through `receiver`'s connect flow; the receiver's closing page text."""
    status, headers, body = _open(f"{receiver}/auth/connect", ca_file)
    if status != 302:
        raise ConnectError(f"/auth/connect answered {status}: {body[:200]}")
    # The state cookie, as the browser would send it back: `name=value` without attributes.
    cookie = headers["set-cookie"].split(";", 1)[0]
    authorize = headers["location"]
    status, _, page = _open(authorize, ca_file)
    if status != 200:
        raise ConnectError(f"the sign-in page answered {status}: {page[:200]}")
    form = {k: html.unescape(v) for k, v in _HIDDEN.findall(page)}
    form["user"] = user_id  # the user's button on the sign-in page
    data = urllib.parse.urlencode(form).encode()
    status, headers, body = _open(authorize.split("?", 1)[0], ca_file, data)
    callback = headers.get("location", "")
    if status != 302 or not callback.startswith(receiver):
        raise ConnectError(f"the sign-in answered {status}: {body[:200]}")
    status, _, done = _open(callback, ca_file, cookie=cookie)
    if status != 200 or "is connected" not in done:
        raise ConnectError(f"/auth/callback answered {status}: {done[:300]}")
    return re.sub(r"<[^>]+>", "", done.split("<p>", 1)[-1].split("</p>", 1)[0])
