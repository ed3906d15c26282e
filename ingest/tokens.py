"""The receiver's check of a request's `validationTokens`, with the signing keys it needs.

Keys come from `{GRAPH_AUTHORITY}/common/discovery/v2.0/keys` (graph.md §7: "Keys rotate
daily, so cache them and refetch on an unknown kid. Accept no other authority."). They are
kept for a day; a token with a `kid` not among them causes one refetch, and refetches are
at most one per `min_refresh_s` (Microsoft's validators default to five minutes), so that
tokens with made-up key ids cannot turn the receiver into a client that hammers Entra; a
failed fetch is retried after RETRY_SECONDS. Concurrent requests that need keys share one
fetch.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from core.exceptions import BadInput
from core.settings import Settings
from workers.validation import (
    JWKS_PATH,
    MAX_TOKENS,
    Expected,
    TokenRejected,
    check,
    key_id,
    signing_keys,
)

log = structlog.get_logger("ingest.tokens")

KEYS_LIFESPAN_SECONDS = 24 * 3600.0
MIN_REFRESH_SECONDS = 300.0
RETRY_SECONDS = 30.0  # after a failed fetch
FETCH_TIMEOUT_SECONDS = 2.0  # inside a request: Graph's budget for an answer is 3 s


class SigningKeys:
    """The identity platform's signing keys by `kid`, fetched when needed and cached."""

    def __init__(
        self,
        url: str,
        ca_bundle: str | None = None,
        *,
        min_refresh_s: float = MIN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ca_bundle = ca_bundle
        self.min_refresh_s = min_refresh_s
        self.clock = clock
        self.fetches = 0  # attempts, for the tests
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._next_try = float("-inf")
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    def _wanted(self, kid: str | None) -> bool:
        stale = self.clock() - self._fetched_at >= KEYS_LIFESPAN_SECONDS
        return (stale or (kid is not None and kid not in self._keys)) and (
            self.clock() >= self._next_try
        )

    async def key(self, kid: str) -> Any | None:
        """The key for `kid`, refetching the set once if it is unknown or a day old."""
        if self._wanted(kid):
            async with self._lock:  # a request that waited here sees the fetch it waited for
                if self._wanted(kid):
                    await self._fetch()
        return self._keys.get(kid)

    async def warm(self) -> None:
        """Fetch the keys now unless they are fresh (at start, when rich notifications are
        configured: the first one need not wait for them)."""
        async with self._lock:
            if self._wanted(None):
                await self._fetch()

    async def _fetch(self) -> None:
        self.fetches += 1
        # A failed fetch may be retried sooner: only a success can be forced by a stranger's
        # made-up key ids, so only a success buys the long wait.
        self._next_try = self.clock() + min(RETRY_SECONDS, self.min_refresh_s)
        if self._session is None:
            ctx: ssl.SSLContext | bool = True
            if self.ca_bundle is not None:
                ctx = ssl.create_default_context(cafile=self.ca_bundle)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS),
                connector=aiohttp.TCPConnector(ssl=ctx),
            )
        try:
            async with self._session.get(self.url) as resp:
                resp.raise_for_status()
                keys = signing_keys(await resp.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError, BadInput) as exc:
            log.warning("signing_keys_unavailable", url=self.url, error=type(exc).__name__)
            return  # the old keys stay
        self._keys, self._fetched_at = keys, self.clock()
        self._next_try = self._fetched_at + self.min_refresh_s
        log.info("signing_keys_fetched", url=self.url, keys=len(keys))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class TokenVerifier:
    """Checks every token of a request; the tenants they vouch for, or TokenRejected."""

    def __init__(self, settings: Settings, keys: SigningKeys | None = None) -> None:
        self.expected = Expected.from_settings(settings)
        ca = str(settings.ca_bundle) if settings.ca_bundle is not None else None
        self.keys = keys or SigningKeys(f"{settings.graph_authority}{JWKS_PATH}", ca)

    async def tenants(self, tokens: object) -> frozenset[str]:
        """Every token must pass (graph.md §7: "if any fails, treat the POST as suspicious")."""
        if not isinstance(tokens, list) or not tokens:
            raise TokenRejected("missing")
        if len(tokens) > MAX_TOKENS:
            raise TokenRejected("too_many")
        kids = [key_id(token) for token in tokens]  # shape first: no fetch for garbage
        out: set[str] = set()
        for token, kid in zip(tokens, kids, strict=True):
            key = await self.keys.key(kid)
            if key is None:
                raise TokenRejected("unknown_key")
            out.add(check(token, key, self.expected))
        return frozenset(out)

    async def close(self) -> None:
        await self.keys.close()
