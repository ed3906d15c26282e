"""Validation tokens minted by the tests, and a JWKS endpoint that publishes their keys.

The claims follow the sample token of Graph's "Validating the authenticity of
notifications" (graph.md §7): `aud` our app id, `iss` the tenant's issuer (v1.0
`https://sts.windows.net/{tid}/`, v2.0 `https://login.microsoftonline.com/{tid}/v2.0`),
`tid`, and the publisher `0bf30f3b-…` in `appid` (v1.0) or `azp` (v2.0).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.ingest import payloads as p
from workers.validation import CHANGE_TRACKING_APP_ID, JWKS_PATH

APP_ID = "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e"  # our app registration's client id


class Signer:
    """An RSA key with a key id, as the identity platform publishes one."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    def jwk(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        out.update(kid=self.kid, use="sig", x5t=self.kid)
        return out

    def mint(self, *, version: str = "2.0", tenant: str = p.TENANT, **over: Any) -> str:
        """A genuine token of that version unless `over` changes a claim (None removes it)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": APP_ID,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": tenant,
            "oid": str(uuid.uuid4()),
            "sub": str(uuid.uuid4()),
            "ver": version,
        }
        if version == "1.0":
            claims.update(iss=f"https://sts.windows.net/{tenant}/", appid=CHANGE_TRACKING_APP_ID,
                          appidacr="2")  # fmt: skip
        else:
            claims.update(iss=f"https://login.microsoftonline.com/{tenant}/v2.0",
                          azp=CHANGE_TRACKING_APP_ID, azpacr="2")  # fmt: skip
        claims.update(over)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


class Jwks:
    """The identity platform's key endpoint: the keys published now, and fetches counted."""

    def __init__(self, *published: Signer) -> None:
        self.published = list(published)
        self.fetches = 0
        self.fetched = asyncio.Event()
        self.url = ""

    async def keys(self, request: web.Request) -> web.Response:
        self.fetches += 1
        self.fetched.set()
        return web.json_response({"keys": [s.jwk() for s in self.published]})

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Jwks]:
        app = web.Application()
        app.router.add_get(JWKS_PATH, self.keys)
        async with TestServer(app) as server:
            self.url = str(server.make_url("")).rstrip("/")
            yield self
