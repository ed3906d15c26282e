"""The delegated OAuth flow of an ECI user with msal: start (PKCE, state) and finish (enrol).

Everything here blocks (msal and redis-py are synchronous): the receiver runs it off its
event loop with asyncio.to_thread.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msal
import redis
import requests
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core import vault
from core.exceptions import ConfigurationError, ConnectFailed
from core.settings import Settings
from workers import users
from workers.subscriptions import GraphSubscriptions, Manager

log = structlog.get_logger("ingest.connect")

# DESIGN §6, as ECI asks. msal adds openid, profile and offline_access itself (it refuses them
# in `scopes`); `email` it does not add, so it is asked for here.
DELEGATED_SCOPES = (
    "Calendars.Read",
    "Files.Read",
    "OnlineMeetingArtifact.Read.All",
    "OnlineMeetings.Read",
    "OnlineMeetingTranscript.Read.All",
    "User.Read",
)
MSAL_SCOPES = [*DELEGATED_SCOPES, "email"]
FLOW_KEYS = ("state", "redirect_uri", "scope", "code_verifier", "nonce", "claims_challenge")


def require_connect(settings: Settings) -> str:
    """The redirect URI; ConfigurationError names the first setting the flow lacks."""
    settings.require_secret_key()
    settings.require_graph()
    if not settings.public_url:
        raise ConfigurationError("INGEST_PUBLIC_URL", "required for the connect flow's redirect")
    return settings.public_url + "/auth/callback"


def _credential(settings: Settings) -> str | dict[str, str]:
    if settings.graph_client_secret:
        return settings.graph_client_secret
    assert settings.graph_client_certificate_path is not None  # require_graph checked
    pem = settings.graph_client_certificate_path.read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    return {
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "thumbprint": hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),  # noqa: S324 - x5t is SHA-1 by definition
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


# Entra's discovery documents (the tenant's OpenID configuration, the instance metadata): the
# same for every user, so fetched once per process and URL, not once per msal application.
_DISCOVERY_PATHS = ("/.well-known/openid-configuration", "/discovery/instance")
DISCOVERY_TTL_SECONDS = 3600.0  # Entra rotates neither often; msal's own http cache keeps a day
# msal sets no timeout: without one, an authority that stops answering holds a thread (and,
# while discovery is fetched, every connect request) for ever.
HTTP_TIMEOUT_SECONDS = 30.0
_discovered: dict[str, tuple[float, requests.Response]] = {}
_discovery_lock = threading.Lock()


class MsalSession(requests.Session):
    """The HTTP client given to msal: discovery answers (200 only) come from a per-process
    cache; everything else, the token requests above all, goes out as usual.

    Why not one shared msal application: it holds a token cache, and `acquire_token_by_auth
    _code_flow` writes the signed-in user's tokens into it; a cache must never be shared
    between users. So each request builds its own application (with the user's own cache),
    and only the discovery, which every construction fetches, is shared."""

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if not args:  # msal passes keywords; positional ones may hold a timeout already
            kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
        return super().request(method, url, *args, **kwargs)

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        if not urlsplit(text).path.endswith(_DISCOVERY_PATHS):
            return super().get(url, **kwargs)
        key = f"{text} {sorted((kwargs.get('params') or {}).items())}"
        # Held while fetching, so that concurrent first requests fetch once between them.
        with _discovery_lock:
            cached = _discovered.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            resp = super().get(url, **kwargs)
            if resp.status_code == 200:
                resp.content  # noqa: B018 - read now, so every later reader gets the same body
                _discovered[key] = (time.monotonic() + DISCOVERY_TTL_SECONDS, resp)
            return resp


def http_session(settings: Settings) -> requests.Session:
    session = MsalSession()
    if settings.ca_bundle is not None:
        session.verify = str(settings.ca_bundle)
        # Else REQUESTS_CA_BUNDLE in the environment wins over session.verify (requests#3829).
        session.trust_env = False
    return session


def msal_app(
    settings: Settings, session: requests.Session, cache: msal.SerializableTokenCache | None = None
) -> msal.ConfidentialClientApplication:
    """The Entra app for delegated tokens, with its own token cache (one user's, or empty).
    Its construction fetches the tenant's discovery: through `session`, a cached copy."""
    authority = settings.graph_authority.rstrip("/")
    return msal.ConfidentialClientApplication(
        settings.graph_client_id,
        client_credential=_credential(settings),
        authority=f"{authority}/{settings.graph_tenant_id}",
        token_cache=cache or msal.SerializableTokenCache(),
        instance_discovery=urlsplit(authority).hostname == "login.microsoftonline.com",
        http_client=session,
    )


def start(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The sign-in URL and the flow data the callback needs (to travel in the state cookie)."""
    redirect_uri = require_connect(settings)
    with http_session(settings) as session:
        app = msal_app(settings, session)
        # msal warns on any response_mode but form_post; a form_post arrives as a cross-site
        # POST, which carries no SameSite=Lax cookie. Ask for form_post, then drop it from the
        # URL: the default response mode is the query string of a top-level GET.
        flow = app.initiate_auth_code_flow(
            MSAL_SCOPES, redirect_uri=redirect_uri, response_mode="form_post"
        )
    parts = urlsplit(flow["auth_uri"])
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "response_mode"]
    return urlunsplit(parts._replace(query=urlencode(query))), {k: flow.get(k) for k in FLOW_KEYS}


def admin_consent_url(settings: Settings, state: str) -> str:
    """Entra's admin-consent page for the app's application permission (CallRecords.Read.All)."""
    redirect_uri = require_connect(settings)
    query = urlencode(
        {"client_id": settings.graph_client_id, "redirect_uri": redirect_uri, "state": state}
    )
    return f"{settings.graph_authority.rstrip('/')}/{settings.graph_tenant_id}/adminconsent?{query}"


@dataclass(frozen=True)
class Connected:
    user: users.EciUser
    subscription: str  # "created", "kept", "tenant-wide" or "failed"


def finish(settings: Settings, flow: dict[str, Any], params: dict[str, str]) -> Connected:
    """Redeem the code, check the tenant, store the sealed cache, enrol the user."""
    cache = msal.SerializableTokenCache()
    with http_session(settings) as session:
        app = msal_app(settings, session, cache)
        try:
            result = app.acquire_token_by_auth_code_flow(flow, params)
        except ValueError:  # msal: state mismatch, or a reply without code
            raise ConnectFailed(
                "connect_bad_reply",
                "Sign-in could not be completed",
                "The reply from Microsoft did not match this sign-in. Please start again.",
            ) from None
    if "error" in result:
        raise ConnectFailed(
            "connect_token_refused",
            "Microsoft refused the sign-in",
            f"{result.get('error')}: {str(result.get('error_description', ''))[:300]}",
        )
    claims = result.get("id_token_claims") or {}
    tenant = str(claims.get("tid", "")).lower()
    if tenant != (settings.graph_tenant_id or "").lower():
        log.warning("security_event", event_type="connect_wrong_tenant", tenant_id=tenant[:64])
        raise ConnectFailed(
            "connect_wrong_tenant",
            "Wrong organisation",
            "You signed in with an account of another organisation. Sign in with your work "
            "account of this organisation.",
            status=403,
        )
    user = users.EciUser(
        id=str(claims.get("oid", "")).lower(),
        upn=str(claims.get("preferred_username") or ""),
        name=str(claims.get("name") or ""),
        source="connect",
    )
    if not user.id:
        raise ConnectFailed("connect_no_user", "Sign-in incomplete", "No user id was returned.")
    conn = redis.Redis.from_url(settings.redis_url)
    try:
        vault.save_token_cache(
            conn, vault.token_cache_vault(settings.require_secret_key()), user.id, cache.serialize()
        )
        stored = users.add(conn, user)
        state = ensure_subscription(settings, conn, user.id)
    finally:
        conn.close()
    log.info("user_connected", user_id=stored.id, subscription=state)
    return Connected(stored, state)


def ensure_subscription(settings: Settings, conn: redis.Redis, user_id: str) -> str:
    """Bring Graph's subscriptions in line (the user's transcripts included); never raises."""
    if settings.tenant_wide_transcripts:
        return "tenant-wide"

    try:
        api = GraphSubscriptions(settings)
        try:
            report = Manager(settings, conn, api).ensure()
        finally:
            api.close()
    except Exception as exc:  # the user is enrolled; renewal retries this
        log.error(
            "connect_subscription_failed",
            user_id=user_id,
            error=type(exc).__name__,
            detail=str(exc)[:300],
        )
        return "failed"
    mine = [r for r in report if r.get("user_id") == user_id]
    return str(mine[0]["action"]) if mine else "failed"


def disconnect(settings: Settings, user_id: str) -> users.EciUser | None:
    """Forget a user's tokens and registry entry, and drop their subscription."""
    conn = redis.Redis.from_url(settings.redis_url)
    try:
        vault.delete_token_cache(conn, user_id)
        gone = users.remove(conn, user_id)
        if gone is not None:
            ensure_subscription(settings, conn, user_id)
    finally:
        conn.close()
    log.info("user_disconnected", user_id=user_id.lower(), known=gone is not None)
    return gone
