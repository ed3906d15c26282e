"""Each check on a validation token, one row each, with tokens the test mints (graph.md §7).

Graph docs, "Validating the authenticity of notifications": the token must not be expired,
must be signed by the identity platform, `aud` must be the app id, the issuer must be the
tenant's, and `azp` (v2.0) or `appid` (v1.0) must be Graph's change-tracking app
0bf30f3b-4a52-48df-9a82-234910c4a086.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.settings import Settings
from tests.ingest import payloads as p
from tests.ingest.jwts import APP_ID, Signer
from workers.validation import (
    JWKS_PATH,
    Expected,
    TokenChecker,
    TokenRejected,
    check,
    key_id,
    signing_keys,
)

HOUR = 3600
EXPECTED = Expected(APP_ID, frozenset({p.TENANT}), "https://login.microsoftonline.com")


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


class TestCheck:
    """A genuine token names its tenant; each broken claim is refused with its own code."""

    @pytest.mark.parametrize("version", ["1.0", "2.0"])
    def test_genuine(self, signer: Signer, version: str) -> None:
        token = signer.mint(version=version, tenant=p.TENANT.upper())
        assert check(token, signer.key.public_key(), EXPECTED) == p.TENANT

    def test_the_configured_authority_issues_too(self, signer: Signer) -> None:
        """Sovereign clouds and the emulator: `{GRAPH_AUTHORITY}/{tid}/v2.0`."""
        cloud = replace(EXPECTED, authority="https://login.microsoftonline.us/")
        token = signer.mint(iss=f"https://login.microsoftonline.us/{p.TENANT}/v2.0")
        assert check(token, signer.key.public_key(), cloud) == p.TENANT
        with pytest.raises(TokenRejected, match="wrong_issuer"):
            check(token, signer.key.public_key(), EXPECTED)

    @pytest.mark.parametrize(
        ("over", "why"),
        [
            ({"iat": -3 * HOUR, "nbf": -3 * HOUR, "exp": -HOUR}, "expired"),
            ({"nbf": HOUR, "exp": 2 * HOUR}, "not_yet_valid"),
            ({"exp": None}, "missing_claim"),
            ({"nbf": None}, "missing_claim"),
            ({"tid": None}, "missing_claim"),
            ({"aud": "another-app"}, "wrong_audience"),
            ({"iss": f"https://sts.windows.net/{p.OTHER_TENANT}/"}, "wrong_issuer"),
            ({"iss": f"https://evil.example/{p.TENANT}/v2.0"}, "wrong_issuer"),
            ({"tenant": p.OTHER_TENANT}, "tenant_not_allowed"),
            ({"azp": APP_ID}, "wrong_publisher"),
            ({"version": "1.0", "appid": None, "azp": None}, "wrong_publisher"),
            ({"ver": "3.0"}, "unknown_version"),
        ],
    )
    def test_refused(self, signer: Signer, over: dict[str, Any], why: str) -> None:
        now = int(time.time())
        claims = {k: (now + v if k in {"iat", "nbf", "exp"} and v is not None else v)
                  for k, v in over.items()}  # fmt: skip
        token = signer.mint(**claims)
        with pytest.raises(TokenRejected) as caught:
            check(token, signer.key.public_key(), EXPECTED)
        assert caught.value.why == why

    def test_clock_skew_of_five_minutes_is_allowed(self, signer: Signer) -> None:
        now = int(time.time())
        token = signer.mint(iat=now - 3 * HOUR, nbf=now - 3 * HOUR, exp=now - 240)
        assert check(token, signer.key.public_key(), EXPECTED) == p.TENANT

    def test_another_key(self, signer: Signer) -> None:
        with pytest.raises(TokenRejected, match="bad_signature"):
            check(signer.mint(), Signer().key.public_key(), EXPECTED)

    def test_no_audience_configured_refuses_all(self, signer: Signer) -> None:
        with pytest.raises(TokenRejected, match="wrong_audience"):
            check(signer.mint(), signer.key.public_key(), replace(EXPECTED, audience=None))

    @pytest.mark.parametrize("token", [None, 7, "", "a.b.c", "x" * 9000])
    def test_key_id_of_garbage(self, token: object) -> None:
        with pytest.raises(TokenRejected, match="malformed"):
            key_id(token)

    def test_signing_keys_skip_what_cannot_sign(self, signer: Signer) -> None:
        jwks = {"keys": [signer.jwk(), {**signer.jwk(), "kid": "enc", "use": "enc"},
                         {"kty": "EC", "kid": "ec"}, {"kty": "RSA", "kid": "broken"}]}  # fmt: skip
        assert list(signing_keys(jwks)) == [signer.kid]


class _Jwks(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == JWKS_PATH else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_url(signer: Signer) -> Iterator[str]:
    _Jwks.body = json.dumps({"keys": [signer.jwk()]}).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class TestTokenChecker:
    """The worker's synchronous checker, for jobs stored with their tokens by an older
    receiver, applies the same checks."""

    def test_same_checks(self, settings: Settings, signer: Signer, jwks_url: str) -> None:
        checker = TokenChecker(replace(settings, graph_client_id=APP_ID, graph_authority=jwks_url))
        checker.check([signer.mint(), signer.mint(version="1.0")])
        with pytest.raises(TokenRejected, match="wrong_publisher"):
            checker.check([signer.mint(), signer.mint(azp=APP_ID)])
        with pytest.raises(TokenRejected, match="unknown_key"):
            checker.check([Signer().mint()])
