"""Delegated Graph access for connected users: their sealed msal token cache as a credential.

DESIGN §6: a user who connected through the OAuth flow has their meetings and transcripts
read with their own delegated token; callRecords, and users an admin added, use the app token.
The cache is read from Redis on every token request (another worker may have refreshed it, or
the user disconnected) and written back, sealed, when msal changed it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msal
import redis
import requests
import structlog
from azure.core.credentials import AccessToken

from core import vault
from core.exceptions import BadInput, UpstreamTransient
from core.settings import Settings
from workers import oauth, users
from workers.graph.client import GraphClient, graph

log = structlog.get_logger("workers.graph.delegated")


class DelegatedCredential:
    """An azure-core TokenCredential for one connected user, backed by msal's silent flow."""

    def __init__(self, settings: Settings, conn: redis.Redis, user_id: str) -> None:
        self.settings = settings
        self.conn = conn
        self.user_id = user_id.lower()
        self._vault = vault.token_cache_vault(settings.require_secret_key())
        self._cache = msal.SerializableTokenCache()
        self._session: requests.Session | None = None
        self._app: msal.ConfidentialClientApplication | None = None

    def acquire(self) -> AccessToken | None:
        """A delegated access token from the stored cache (refreshed if due), or None when
        none can be had without the user: no cache, a broken seal, a refresh token revoked."""
        try:
            serialized = vault.load_token_cache(self.conn, self._vault, self.user_id)
        except BadInput:
            return None
        if serialized is None:
            return None
        try:
            self._cache.deserialize(serialized)
            app = self._msal()
            accounts = app.get_accounts()
            mine = [a for a in accounts if str(a.get("local_account_id")).lower() == self.user_id]
            if not (mine or accounts):
                return None
            result = app.acquire_token_silent(list(oauth.DELEGATED_SCOPES), (mine or accounts)[0])
        except Exception as exc:  # any failure here means: use the app token
            log.info("delegated_token_error", user_id=self.user_id, error=type(exc).__name__)
            return None
        if self._cache.has_state_changed:
            # SET XX: a user who disconnected meanwhile does not get their tokens back.
            sealed = self._vault.seal(self._cache.serialize().encode())
            self.conn.set(vault.TOKENS_PREFIX + self.user_id, sealed, xx=True)
        if not result or "access_token" not in result:
            return None
        expires_in = int(result.get("expires_in") or 0)
        return AccessToken(str(result["access_token"]), int(time.time()) + expires_in)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The TokenCredential protocol; `scopes` are ignored: the user granted DESIGN §6's."""
        token = self.acquire()
        if token is None:
            # Transient: the job is retried, and then the app token is chosen up front.
            raise UpstreamTransient(f"the delegated token of user {self.user_id} was lost")
        return token

    def _msal(self) -> msal.ConfidentialClientApplication:
        if self._app is None:  # building it fetches the tenant's discovery document
            self._session = oauth.http_session(self.settings)
            self._app = oauth.msal_app(self.settings, self._session, self._cache)
        return self._app

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = self._app = None


class DelegatedClients:
    """Per-user Graph clients of connected users, on the app client's loop, built on first use."""

    def __init__(self, settings: Settings, conn: redis.Redis, app: GraphClient) -> None:
        self.settings = settings
        self.conn = conn
        self.app = app
        self._clients: dict[str, tuple[GraphClient, DelegatedCredential]] = {}

    def client_for(self, user_id: str) -> GraphClient | None:
        """The user's delegated client when they connected and a token can be had; else None
        (the app token), with a warning when a connected user's token is unavailable."""
        uid = user_id.lower()
        if not self.settings.secret_key or not _connected(self.conn, uid):
            return None
        if uid not in self._clients:
            credential = DelegatedCredential(self.settings, self.conn, uid)
            self._clients[uid] = (self.app.with_credential(credential), credential)
        client, credential = self._clients[uid]
        if credential.acquire() is None:
            log.warning("delegated_token_unavailable", user_id=uid, fallback="app token")
            return None
        return client


def _connected(conn: redis.Redis, user_id: str) -> bool:
    raw: bytes | None = conn.hget(users.USERS_KEY, user_id)  # type: ignore[assignment]
    if raw is None:
        return False
    try:
        return bool(json.loads(raw).get("source") == "connect")
    except (ValueError, AttributeError):
        return False


def resolver(context: Any) -> Callable[[str], GraphClient | None] | None:
    """The worker process's organizer -> delegated client lookup (None: app token only)."""
    if not context.settings.secret_key:
        return None

    clients: DelegatedClients = context.resource(
        "graph_delegated", lambda ctx: DelegatedClients(ctx.settings, ctx.redis, graph(ctx))
    )
    return clients.client_for
