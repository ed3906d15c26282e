"""The Salesforce emulator's aiohttp app: auth, API limits and counting, faults, control routes."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from emulators.faults import FaultInjector, Faults
from emulators.salesforce import metadata
from emulators.salesforce.oauth import Sessions, TokenEndpoint
from emulators.salesforce.records import Org
from emulators.salesforce.rest import Api, Reply, versions_body
from emulators.salesforce.schema import Schema, standard_objects
from emulators.salesforce.seed import seed
from emulators.salesforce.store import Store

DEFAULT_DAILY_LIMIT = 15000  # a Developer Edition org's daily API requests


@dataclass
class SalesforceFaults(Faults):
    """Adds REQUEST_LIMIT_EXCEEDED after N calls for a burst of calls, and session expiry."""

    request_limit_after: int | None = None
    request_limit_burst: int = 1
    expire_sessions_now: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        after = changes.get("request_limit_after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise ValueError("fault 'request_limit_after' must be an integer or null")
        super().update(changes)


@dataclass
class Config:
    metadata_dir: Path = metadata.DEFAULT_DIR
    db: str | None = None
    seed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    session_lifetime_s: float = 7200.0
    jwt_key: RSAPublicKey | None = None
    daily_limit: int = DEFAULT_DAILY_LIMIT
    query_batch: int = 2000
    faults: SalesforceFaults = field(default_factory=SalesforceFaults)


def _errors(status: int, code: str, message: str) -> web.Response:
    return web.json_response([{"message": message, "errorCode": code}], status=status)


def _throttled(status: int) -> web.Response:
    if status == 429:
        return _errors(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests")
    return _errors(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")


class Emulator:
    """State of one emulated org and the handlers that serve it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        store = Store(config.db)
        self.org = Org(
            Schema(standard_objects() + metadata.read_objects(config.metadata_dir)), store
        )
        if store.is_empty() and config.seed:
            seed(self.org, config.seed)
        self.api = Api(self.org, config.daily_limit)
        self.api.cursors.batch = config.query_batch
        self.sessions = Sessions(config.session_lifetime_s)
        self.token = TokenEndpoint(self.sessions, config.jwt_key)
        self.faults = FaultInjector(config.faults, _throttled)
        self.by_route: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self._limit_base = 0  # api calls when request_limit_after was last set
        self._burst_left = config.faults.request_limit_burst

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.faults.middleware], client_max_size=64 * 2**20)
        app.router.add_post("/services/oauth2/token", self.token.handle)
        app.router.add_get("/services/data", self.versions)
        app.router.add_get("/services/data/", self.versions)
        app.router.add_route("*", "/services/data/{tail:.+}", self.data)
        app.router.add_get("/_emulator/dump", self.dump)
        app.router.add_get("/_emulator/stats", self.stats)
        app.router.add_get("/_emulator/faults", self.faults.handle_get)
        app.router.add_post("/_emulator/faults", self.set_faults)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        self.org.store.close()

    async def versions(self, request: web.Request) -> web.Response:
        return web.json_response(versions_body())

    def _limited(self) -> bool:
        """Whether this call hits REQUEST_LIMIT_EXCEEDED (the daily limit or the fault)."""
        if self.api.used >= self.api.daily_limit:
            return True
        f = self.config.faults
        if (
            f.request_limit_after is None
            or self.api.used - self._limit_base < f.request_limit_after
        ):
            return False
        if self._burst_left > 0:
            self._burst_left -= 1
            return True
        f.request_limit_after = None  # the burst is over: recover
        return False

    async def data(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not self.sessions.valid(token.strip()):
            self.rejected["invalid_session"] += 1
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self._limited():
            self.rejected["request_limit"] += 1
            resp = _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            return self._usage(resp)
        self.api.used += 1
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                self.by_route[f"{request.method} (unparsable body)"] += 1
                resp = _errors(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}")
                return self._usage(resp)
        path = request.rel_url.raw_path.removeprefix("/services/data/")
        reply = self.api.handle(request.method, path, request.rel_url.query, body)
        self.by_route[reply.route] += 1
        return self._usage(_response(reply))

    def _usage(self, resp: web.StreamResponse) -> web.StreamResponse:
        resp.headers["Sforce-Limit-Info"] = f"api-usage={self.api.used}/{self.api.daily_limit}"
        return resp

    async def dump(self, request: web.Request) -> web.Response:
        return web.json_response(self.org.store.dump())

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "api_calls": self.api.used,
                "api_limit": self.api.daily_limit,
                "by_route": dict(sorted(self.by_route.items())),
                "rejected": dict(self.rejected),
                "faults_injected": dict(self.faults.injected),
                "token_requests": self.token.issued,
            }
        )

    async def set_faults(self, request: web.Request) -> web.Response:
        resp = await self.faults.handle_post(request)
        if resp.status != 200:
            return resp
        body = await request.json()
        f = self.config.faults
        if "request_limit_after" in body or "request_limit_burst" in body:
            self._limit_base, self._burst_left = self.api.used, f.request_limit_burst
        if f.expire_sessions_now:
            f.expire_sessions_now = False
            self.sessions.expire_all()
        return web.json_response(f.as_dict())


def _response(reply: Reply) -> web.Response:
    if reply.status == 204 or reply.body is None:
        return web.Response(status=reply.status, headers=reply.headers)
    if isinstance(reply.body, bytes):
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)


def create_app(config: Config) -> web.Application:
    return Emulator(config).app()
