"""The `validationTokens` of rich notifications: JWTs Graph's change-tracking app signs.

Every token must be signed by a key of the identity platform's JWKS
(`{GRAPH_AUTHORITY}/common/discovery/v2.0/keys`, cached, refetched on an unknown key id),
unexpired, addressed to our app, issued for an allowed tenant, and published by Graph's
change-tracking application (graph.md §7). Any failure makes the encrypted data untrusted.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import jwt

from core.exceptions import BadInput
from core.settings import Settings

CHANGE_TRACKING_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
JWKS_LIFESPAN_SECONDS = 24 * 3600.0  # keys rotate daily; an unknown kid refetches sooner


class TokenChecker:
    """Checks validation tokens against the authority's published keys (one per process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ctx = None
        if settings.ca_bundle is not None:
            ctx = ssl.create_default_context(cafile=str(settings.ca_bundle))
        self.jwks = jwt.PyJWKClient(
            f"{settings.graph_authority}/common/discovery/v2.0/keys",
            cache_keys=True,
            lifespan=JWKS_LIFESPAN_SECONDS,
            timeout=10,
            ssl_context=ctx,
        )

    def _issuers(self) -> set[str]:
        tenants = set(self.settings.graph_allowed_tenants)
        if self.settings.graph_tenant_id:
            tenants.add(self.settings.graph_tenant_id.lower())
        out = set()
        for tid in tenants:
            out |= {
                f"https://sts.windows.net/{tid}/",
                f"https://login.microsoftonline.com/{tid}/v2.0",
                f"{self.settings.graph_authority}/{tid}/v2.0",
            }
        return out

    def check(self, tokens: Iterable[Any]) -> None:
        """Raise BadInput unless every token passes every check."""
        issuers = self._issuers()
        for token in tokens:
            if not isinstance(token, str):
                raise BadInput("a validation token is not a string")
            try:
                key = self.jwks.get_signing_key_from_jwt(token)
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=["RS256"],
                    audience=self.settings.graph_client_id,
                    options={"require": ["exp", "nbf", "iss", "aud"]},
                )
            except jwt.PyJWTError as exc:
                raise BadInput(f"validation token rejected: {type(exc).__name__}") from None
            if str(claims.get("iss", "")).lower() not in {i.lower() for i in issuers}:
                raise BadInput("validation token from an unexpected issuer")
            publisher = claims.get("appid") if claims.get("ver") == "1.0" else claims.get("azp")
            if publisher != CHANGE_TRACKING_APP_ID:
                raise BadInput("validation token not published by Graph's change tracking")
