"""The receiver's public URL answers Graph's validation handshake exactly as Graph sends it.

Graph creates (and renews) a subscription only after `POST {notificationUrl}?validationToken=…`
with `Content-Type: text/plain` and an empty body is answered within 10 seconds with `200`,
`Content-Type: text/plain` and the URL-decoded token as the body. The doctor sends the same,
with a token of spaces and symbols so that a receiver that re-encodes or wraps it is caught.
"""

from __future__ import annotations

import secrets
import ssl
import time
from urllib.parse import quote, quote_plus

import httpx

from core.settings import Settings
from ingest.checkup import Check, failed, passed

LIMIT_SECONDS = 10.0  # Graph's limit for the answer
PATHS = ("/graph/notifications", "/graph/lifecycle")
FIX_ROUTE = (
    "serve `ingest serve` (Procfile web) at INGEST_PUBLIC_URL and route POST {path} to "
    "it unchanged (a proxy must keep the query string and must not redirect)"
)
FIX_ECHO = (
    "answer the handshake before any other work: status 200, Content-Type: text/plain, "
    "and the validationToken URL-decoded once as the body (`ingest serve` does)"
)


def token() -> str:
    """A token like Graph's, with what naive receivers mangle: spaces, '+', '&', '%', '/'."""
    return f"Validation: ingest doctor {secrets.token_hex(4)} +&=%/?#"


def check(settings: Settings, limit: float = LIMIT_SECONDS) -> list[Check]:
    if not settings.public_url:
        return [
            failed(
                f"handshake {p}",
                "not checked: INGEST_PUBLIC_URL is not set",
                "set INGEST_PUBLIC_URL to the receiver's public https address",
            )
            for p in PATHS
        ]
    return [answer(settings.public_url, path, limit) for path in PATHS]


def answer(base: str, path: str, limit: float = LIMIT_SECONDS) -> Check:
    name = f"handshake {path}"
    sent = token()
    url = f"{base}{path}?validationToken={quote(sent, safe='')}"
    started = time.monotonic()
    try:
        # Graph trusts public CAs only: INGEST_CA_BUNDLE (the emulators' CA) is not used here.
        with httpx.Client(timeout=httpx.Timeout(limit), follow_redirects=False) as client:
            resp = client.post(url, content=b"", headers={"Content-Type": "text/plain"})
    except httpx.TimeoutException:
        return failed(name, f"no answer within {limit:g} s (Graph's limit)", FIX_ECHO)
    except httpx.ConnectError as exc:
        if isinstance(exc.__cause__, ssl.SSLError) or "CERTIFICATE" in str(exc).upper():
            return failed(
                name,
                f"TLS failed at {base}: {exc}",
                "serve INGEST_PUBLIC_URL with a "
                "certificate from a public CA for its host name (Graph checks it)",
            )
        return failed(
            name, f"cannot reach {base}: {type(exc).__name__}: {exc}", FIX_ROUTE.format(path=path)
        )
    except httpx.HTTPError as exc:
        return failed(name, f"{type(exc).__name__}: {exc}", FIX_ROUTE.format(path=path))
    took = time.monotonic() - started
    return _judge(name, path, resp, sent, took, limit)


def _judge(
    name: str, path: str, resp: httpx.Response, sent: str, took: float, limit: float
) -> Check:
    kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if took > limit:
        return failed(name, f"answered after {took:.1f} s, over Graph's {limit:g} s", FIX_ECHO)
    if resp.status_code != 200:
        where = f" to {resp.headers.get('location')}" if resp.is_redirect else ""
        return failed(
            name, f"answered {resp.status_code}{where}, not 200", FIX_ROUTE.format(path=path)
        )
    if "json" in kind:
        return failed(name, f"answered with JSON ({kind}), not the token as text/plain", FIX_ECHO)
    if kind != "text/plain":
        return failed(
            name, f"answered with Content-Type {kind or 'none'}, not text/plain", FIX_ECHO
        )
    body = resp.text
    if body != sent:
        if body in (quote(sent, safe=""), quote_plus(sent), quote(sent)):
            why = "the token still URL-encoded"
        elif body.strip() == sent:
            why = "the token with whitespace around it"
        else:
            why = f"{len(body)} characters that are not the token"
        return failed(name, f"answered with {why}", FIX_ECHO)
    return passed(name, f"200 text/plain with the decoded token in {took * 1000:.0f} ms")
