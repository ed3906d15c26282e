"""The operators' page, `GET /ops` and its actions (DESIGN §3.5); added only with INGEST_OPS_TOKEN.

Handlers are thin: who is asking (ingest/ops_auth.py) → read or act in a thread → answer.
Everything that reads Redis for the page runs in a thread on its own small connection pool
(ingest/ops_data.py), never on the receiver's event loop, so the page cannot hold up a
notification; sessions are one async GET on the receiver's client.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import redis
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from rq import Queue
from rq.serializers import JSONSerializer

from core.exceptions import BadInput
from core.settings import Settings
from ingest import dlq, ops_data, ops_page
from ingest.ops_auth import Operator, OpsAuth

log = structlog.get_logger("ingest.ops")

AUTH = web.AppKey("ops_auth", OpsAuth)
SYNC_REDIS = web.AppKey("ops_redis", redis.Redis)
BUSY = web.AppKey("ops_busy", asyncio.Semaphore)
FAILED_CACHE = web.AppKey("ops_failed_cache", ops_data.FailedCache)
MAX_FORM = 4096
# Page loads read Redis in at most this many threads at once, on as many connections: many
# open tabs queue here instead of taking the threads other handlers (/metrics) use.
CONCURRENT_READS = 2
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Form = Mapping[str, object]  # the posted form (a MultiDictProxy)


def add_routes(
    app: web.Application, settings_key: web.AppKey[Settings], redis_key: web.AppKey[aioredis.Redis]
) -> None:
    """The page's routes, when the settings hold an ops token (otherwise /ops is a 404)."""
    settings = app[settings_key]
    if settings.ops_token is None:
        return
    app[AUTH] = OpsAuth(settings.ops_token, (settings.public_url or "").startswith("https://"))
    app[FAILED_CACHE] = ops_data.FailedCache()

    async def sync_redis(app: web.Application) -> AsyncIterator[None]:
        # Connections of its own: page reads never take the notification path's.
        pool = redis.BlockingConnectionPool.from_url(
            settings.redis_url, socket_timeout=5.0, socket_connect_timeout=1.0,
            max_connections=CONCURRENT_READS + 1, timeout=10,
        )  # fmt: skip
        app[SYNC_REDIS] = redis.Redis(connection_pool=pool)
        app[BUSY] = asyncio.Semaphore(CONCURRENT_READS)
        yield
        app[SYNC_REDIS].close()

    app.cleanup_ctx.append(sync_redis)
    views = Views(settings_key, redis_key)
    app.router.add_get("/ops", guarded(views.page))
    app.router.add_post("/ops/login", guarded(views.login))
    app.router.add_post("/ops/logout", guarded(views.signed_in(views.logout)))
    app.router.add_post("/ops/requeue", guarded(views.signed_in(views.requeue)))


def guarded(handler: Handler) -> Handler:
    """A page that says Redis is down (503), rather than a 500, while it is."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except redis.RedisError as exc:
            log.error("ops_redis_unavailable", error=type(exc).__name__, path=request.path)
            body = "<p>Redis does not answer; nothing was read or changed. Try again later.</p>"
            return _html(ops_page.page("Redis unavailable", body), 503)

    return handle


def _html(text: str, status: int = 200, nonce: str | None = None) -> web.Response:
    resp = web.Response(text=text, content_type="text/html", status=status)
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    resp.headers.update({
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src {script}; form-action 'self'; frame-ancestors 'none'",
    })  # fmt: skip
    return resp


def unauthorized(message: str | None = None) -> web.Response:
    """401 with the sign-in form (browsers) and the bearer challenge (scripts)."""
    resp = _html(ops_page.sign_in(message), 401)
    resp.headers["WWW-Authenticate"] = 'Bearer realm="ops"'
    return resp


def _see_page(note: str | None = None) -> web.Response:
    location = "/ops" if note is None else f"/ops?note={note}"
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


NOTES = {"requeued": "Job requeued: it runs again with its id (no double writes).",
         "gone": "That job is no longer among the failed jobs."}  # fmt: skip


class Views:
    def __init__(
        self, settings_key: web.AppKey[Settings], redis_key: web.AppKey[aioredis.Redis]
    ) -> None:
        self.settings_key = settings_key
        self.redis_key = redis_key

    async def _operator(self, request: web.Request) -> Operator | None:
        return await request.app[AUTH].operator(request, request.app[self.redis_key])

    def signed_in(
        self, action: Callable[[web.Request, Operator, Form], Awaitable[web.Response]]
    ) -> Handler:
        """An action: a signed-in caller, a form within bounds and its CSRF token, or nothing."""

        async def handle(request: web.Request) -> web.StreamResponse:
            who = await self._operator(request)
            if who is None:
                return unauthorized()
            if (request.content_length or 0) > MAX_FORM:
                return web.Response(status=413, text="form too large")
            form = await request.post()
            csrf = form.get("csrf")
            if not request.app[AUTH].csrf_ok(who, csrf if isinstance(csrf, str) else None):
                log.warning("security_event", event_type="ops_csrf_refused", path=request.path)
                return _html(ops_page.page("Refused", "<p>That request carried no valid CSRF "
                                           'token; nothing was changed. <a href="/ops">Back</a>'
                                           "</p>"), 403)  # fmt: skip
            return await action(request, who, form)

        return handle

    async def page(self, request: web.Request) -> web.StreamResponse:
        who = await self._operator(request)
        if who is None:
            return unauthorized()
        settings = request.app[self.settings_key]
        search = request.query.get("meeting", "").strip() or None
        async with request.app[BUSY]:
            snap = await asyncio.to_thread(
                ops_data.collect, settings, request.app[SYNC_REDIS], search,
                request.app[FAILED_CACHE],
            )  # fmt: skip
        nonce = secrets.token_urlsafe(16)
        note = NOTES.get(request.query.get("note", ""))
        return _html(ops_page.render(snap, who.csrf or "", nonce, note), nonce=nonce)

    async def login(self, request: web.Request) -> web.StreamResponse:
        if (request.content_length or 0) > MAX_FORM:
            return web.Response(status=413, text="form too large")
        form = await request.post()
        token = form.get("token")
        auth = request.app[AUTH]
        if not isinstance(token, str) or not auth.token_ok(token):
            log.warning("security_event", event_type="ops_sign_in_refused", remote=request.remote)
            return unauthorized("That is not the ops token.")
        resp = _see_page()
        await auth.sign_in(request.app[self.redis_key], resp)
        log.info("ops_signed_in", remote=request.remote)
        return resp

    async def logout(self, request: web.Request, who: Operator, form: Form) -> web.Response:
        resp = _html(ops_page.sign_in("Signed out."))
        await request.app[AUTH].sign_out(request.app[self.redis_key], who, resp)
        return resp

    async def requeue(self, request: web.Request, who: Operator, form: Form) -> web.Response:
        job_id = str(form.get("job_id") or "")[:128]
        settings = request.app[self.settings_key]
        queue = Queue(settings.queue, connection=request.app[SYNC_REDIS],
                      serializer=JSONSerializer)  # fmt: skip
        try:
            async with request.app[BUSY]:
                await asyncio.to_thread(dlq.requeue, queue, [job_id])
        except BadInput:
            return _see_page("gone")
        log.info("ops_requeued", job_id=job_id, via=who.via)
        return _see_page("requeued")
