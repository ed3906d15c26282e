"""The receiver: an aiohttp app that answers Graph's handshake and stores notifications.

Handlers are thin: verify -> parse -> enqueue -> answer. Nothing here calls Graph or
Salesforce; a notification costs at most three Redis round trips (a registry reload, rarely,
or a check of the ids its copy lacks; and the enqueue script, once per 256 items, shared
with the requests that arrive meanwhile: ingest/enqueue.py), and a rich one at most one
fetch of the identity platform's signing keys (rarely: ingest/tokens.py).
The work per request is bounded (ingest/bounded.py) and its drops are logged as one line
(ingest/drops.py).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from core import checks
from core.exceptions import Drop
from core.settings import Settings
from ingest import connect, malformed, ops, pool
from ingest.bodies import BodyGate, Unread, answer_and_close
from ingest.bounded import Parser, Refused, Screened, Slicer
from ingest.drops import DropTally, SecurityLog
from ingest.enqueue import Enqueuer
from ingest.health import HealthCollector
from ingest.metrics import ReceiverMetrics
from ingest.notifications import Item, validate_canonical
from ingest.tokens import TokenVerifier
from workers.registry import RegistryCache
from workers.validation import TokenRejected

log = structlog.get_logger("ingest.receiver")

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
ENQUEUER = web.AppKey("enqueuer", Enqueuer)
REGISTRY = web.AppKey("registry", RegistryCache)
METRICS = web.AppKey("metrics", ReceiverMetrics)
PARSER = web.AppKey("parser", Parser)
TOKENS = web.AppKey("tokens", TokenVerifier)
SECURITY_LOG = web.AppKey("security_log", SecurityLog)
BODIES = web.AppKey("bodies", BodyGate)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_JSON_TYPES = ("application/json",)
MAX_VALIDATION_TOKEN = 8192
# Request ids: unique per process start, cheap to make (uuid4 costs a syscall per request).
_ID_PREFIX = uuid.uuid4().hex[:12]
_ids = itertools.count(1)


def _is_json(content_type: str) -> bool:
    return content_type in _JSON_TYPES or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def handshake(request: web.Request) -> web.Response | None:
    """Graph's validation request: echo the decoded token as text/plain, before any parsing."""
    if "validationToken" not in request.query:
        return None
    token = request.query["validationToken"]
    if len(token) > MAX_VALIDATION_TOKEN:
        return web.Response(status=400, text="validationToken too long", content_type="text/plain")
    log.info("validation_handshake", path=request.path)
    resp = web.Response(status=200, text=token, content_type="text/plain")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


async def _read_body(request: web.Request, limit: int) -> bytes | web.Response | Unread:
    """The raw body, the 4xx answer for a content type or size that is refused unread, or
    why the body could not be read (ingest/bodies.py: budget, deadline, encoding)."""
    if not _is_json(request.content_type):
        return _plain(415, "expected application/json")
    if request.content_length is not None and request.content_length > limit:
        return _plain(413, f"body over {limit} bytes")
    return await request.app[BODIES].read(request, limit)


async def _accept(
    app: web.Application, screened: Screened, drops: DropTally, lifecycle: bool
) -> list[Item]:
    """Validate every screened item against the registry; tally what is not genuine. Graph
    posts lifecycle events to the lifecycle URL alone and changes to the notification URL
    alone: an item at the other endpoint is not Graph's."""
    registry = app[REGISTRY]
    known = await registry.lookup(app[REDIS], {sub_id for sub_id, _ in screened.candidates})
    app[METRICS].registry_size.set(registry.size)
    allowed = frozenset(t.lower() for t in app[SETTINGS].graph_allowed_tenants)
    accepted: list[Item] = []
    slicer = Slicer()
    for sub_id, item in screened.candidates:
        try:
            valid = validate_canonical(sub_id, item, known.get(sub_id), allowed)
            if (valid.kind == "lifecycle") != lifecycle:
                raise Drop("wrong_endpoint")
            accepted.append(valid)
        except Drop as drop:
            drops.add(drop.reason, item)
        if slicer.due():
            await slicer.pause()
    return accepted


async def _vouched(
    app: web.Application, items: list[Item], tokens: list[Any] | None, drops: DropTally
) -> list[Item]:
    """The items, less those with `encryptedContent` that no valid validation token of the
    request vouches for: its HMAC key came encrypted with our public certificate, so only
    the tokens say that Graph sent it (graph.md §7)."""
    if not any("encryptedContent" in item.payload for item in items):
        return items
    tenants: frozenset[str] = frozenset()
    reason = "validation_tokens_missing"
    if tokens is not None:
        try:
            tenants = await app[TOKENS].tenants(tokens)
        except TokenRejected as exc:
            if exc.why != "missing":
                reason = "validation_token_invalid"
            drops.notes["token_error"] = exc.why
    out = []
    for item in items:
        if "encryptedContent" in item.payload and item.payload["tenantId"] not in tenants:
            drops.add(reason, item.payload)
        else:
            out.append(item)
    return out


def _report(request: web.Request, drops: DropTally) -> None:
    """Count every dropped item; log the request's drops as one (rate-limited) line."""
    if not drops.total:
        return
    metrics = request.app[METRICS]
    for reason, count in drops.counts.items():
        metrics.dropped.labels(reason).inc(count)
    if not request.app[SECURITY_LOG].dropped(request.remote or "unknown", drops):
        metrics.security_events_suppressed.inc()


def notification_handler(endpoint: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        answer = handshake(request)
        if answer is not None:
            return answer
        app = request.app
        metrics = app[METRICS]
        body = await _read_body(request, app[SETTINGS].max_body_bytes)
        if isinstance(body, Unread):
            return await answer_and_close(request, body)
        screened = body if isinstance(body, web.Response) else await app[PARSER].screen(body)
        if isinstance(screened, web.Response | Refused):
            status, text = screened.status, str(screened.text)
            log.info("notification_rejected", status=status, reason=text)
            return _plain(status, text)
        metrics.received_on(endpoint).inc(screened.received)
        drops = screened.drops
        started = time.perf_counter()
        try:
            items = await _accept(app, screened, drops, lifecycle=endpoint == "lifecycle")
            if drops.counts.get("unknown_subscription") and app[REGISTRY].wiped:
                # Redis lost the registry (DESIGN §3.2: Redis cannot take these items now):
                # Graph retries them once the clock has restored it (ingest/recovery.py).
                log.warning("registry_wiped", items=screened.received)
                drops = DropTally()  # nothing is dropped: all of it comes again
                return _plain(503, "subscription registry being restored; retry later")
            items = await _vouched(app, items, screened.tokens, drops)
            job_ids = await app[ENQUEUER].enqueue(items)
        except RedisError as exc:
            metrics.enqueue_failures.inc()
            log.error("enqueue_failed", error=type(exc).__name__, items=screened.received)
            return _plain(503, "storage unavailable; retry later")
        finally:
            _report(request, drops)
        metrics.enqueue_seconds.observe(time.perf_counter() - started)
        stored = Counter(item.kind for item, job_id in zip(items, job_ids, strict=True) if job_id)
        for kind, count in stored.items():
            metrics.accepted_of(kind).inc(count)
        fresh = stored.total()
        if fresh < len(items):
            metrics.duplicates.inc(len(items) - fresh)
        # The request's summary line. A request where every item was stored is the common
        # case at thousands a second: it logs at debug (the metrics count it); anything
        # dropped or redelivered logs at info.
        unusual = fresh != screened.received
        (log.info if unusual else log.debug)(
            "notifications_stored",
            items=screened.received,
            accepted=fresh,
            duplicates=len(items) - fresh,
            dropped=drops.total,
        )
        return web.Response(status=202)

    return handle


async def healthz(request: web.Request) -> web.Response:
    return _plain(200, "ok")


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[REDIS].ping()
    except RedisError:
        return _plain(503, "redis unavailable")
    return _plain(200, "ready")


async def metrics_view(request: web.Request) -> web.Response:
    # In a thread: the health gauges read Redis synchronously at scrape time.
    data = await asyncio.to_thread(generate_latest, request.app[METRICS].registry)
    resp = web.Response(body=data)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id for every log line of this request; time and count the request."""
    request_id = request.headers.get("client-request-id") or f"{_ID_PREFIX}-{next(_ids):x}"
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id[:64])
    started = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception:
        # A notification must never get a 500: Graph should retry, as after a storage failure.
        log.exception("request_failed", path=request.path)
        if request.path.startswith("/graph/"):
            status = 503
            return _plain(503, "temporary failure; retry later")
        raise
    finally:
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else "unmatched"
        request.app[METRICS].observe_request(endpoint, status, time.perf_counter() - started)


def create_app(settings: Settings, metrics: ReceiverMetrics | None = None) -> web.Application:
    """The receiver app; Redis is opened on start-up and closed on clean-up."""
    malformed.install()
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[request_context])
    app[SETTINGS] = settings
    app[METRICS] = metrics or ReceiverMetrics()
    app[REGISTRY] = RegistryCache()
    app[PARSER] = Parser()
    app[TOKENS] = TokenVerifier(settings)
    app[SECURITY_LOG] = SecurityLog()
    app[BODIES] = BodyGate()
    health_conn = redis.Redis.from_url(settings.redis_url, socket_timeout=1.0,
                                       socket_connect_timeout=0.5)  # fmt: skip
    app[METRICS].watch_health(HealthCollector(health_conn))

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        conn = pool.client(settings.redis_url)
        version = (7, 0, 0)
        try:
            info = await conn.info("server")
            version = tuple(int(p) for p in str(info["redis_version"]).split(".")[:3])  # type: ignore[assignment]
        except RedisError as exc:
            log.warning("redis_unreachable_at_start", hint="the receiver answers 503 until it is",
                        error=str(checks.redis_unreachable(settings.redis_url, exc)))  # fmt: skip
        app[REDIS] = conn
        app[ENQUEUER] = Enqueuer(conn, settings.queue, settings.dedupe_ttl_seconds, version)
        yield
        await conn.aclose()
        health_conn.close()

    async def parser_ctx(app: web.Application) -> AsyncIterator[None]:
        app[PARSER].warm()  # the child starts now, not on the first large body
        yield
        await app[PARSER].close()

    async def tokens_ctx(app: web.Application) -> AsyncIterator[None]:
        warming = None
        if settings.graph_encryption_cert_path is not None:  # rich notifications will come
            warming = asyncio.create_task(app[TOKENS].keys.warm())
        yield
        if warming is not None:
            warming.cancel()
        await app[TOKENS].close()

    app.cleanup_ctx.extend([redis_ctx, parser_ctx, tokens_ctx])
    app.router.add_post("/graph/notifications", notification_handler("notifications"))
    app.router.add_post("/graph/lifecycle", notification_handler("lifecycle"))
    connect.add_routes(app, SETTINGS)
    ops.add_routes(app, SETTINGS, REDIS)  # only when INGEST_OPS_TOKEN is set
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app
