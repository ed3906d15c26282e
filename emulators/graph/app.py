"""The Graph emulator's aiohttp application: identity, subscriptions, data and control routes."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from emulators.faults import Handler
from emulators.graph import data
from emulators.graph.auth import ISSUER_KEY
from emulators.graph.clock import Clock
from emulators.graph.control import Control
from emulators.graph.delivery import Delivery
from emulators.graph.errors import graph_error
from emulators.graph.faults import GraphFaultInjector, GraphFaults
from emulators.graph.identity import Identity
from emulators.graph.notifier import Notifier
from emulators.graph.options import GraphOptions
from emulators.graph.signin import SignIn
from emulators.graph.stats import Stats
from emulators.graph.subscriptions import SubscriptionRoutes, SubscriptionStore
from emulators.graph.tokens import SigningKey, TokenIssuer
from emulators.tls import CA_CERT

if TYPE_CHECKING:
    from emulators.graph.world import World


@dataclass
class GraphEmulator:
    """Everything one emulator holds, reachable from the app (tests use it)."""

    world: World
    clock: Clock
    faults: GraphFaults
    options: GraphOptions
    issuer: TokenIssuer
    store: SubscriptionStore
    delivery: Delivery
    notifier: Notifier
    stats: Stats


EMULATOR_KEY = web.AppKey("graph_emulator", GraphEmulator)


@web.middleware
async def graph_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown Graph paths and methods answer with Graph's JSON error, not aiohttp's text."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        if not request.path.startswith("/v1.0/"):
            raise
        return graph_error(405, "Request_BadRequest", "The HTTP method is not allowed.")
    except web.HTTPNotFound as exc:
        if not request.path.startswith("/v1.0/") or exc.content_type == "application/json":
            raise
        return graph_error(
            400, "BadRequest", f"Resource not found for the segment '{request.path}'."
        )


def _delivery_ssl(ca_dir: Path | None) -> ssl.SSLContext:
    """Trust the system's CAs plus the emulators' CA, so local https receivers work too."""
    ctx = ssl.create_default_context()
    if ca_dir is not None and (ca_dir / CA_CERT).exists():
        ctx.load_verify_locations(cafile=str(ca_dir / CA_CERT))
    return ctx


def create_app(
    world: World,
    *,
    clock: Clock | None = None,
    faults: GraphFaults | None = None,
    options: GraphOptions | None = None,
    ca_dir: Path | None = None,
) -> web.Application:
    """The emulator for `world`; pass the same `clock` the World was built with."""
    clock = clock or Clock()
    faults = faults or GraphFaults()
    options = options or GraphOptions()
    injector = GraphFaultInjector(faults)
    issuer = TokenIssuer(
        SigningKey(),
        world.tenant_id,
        clock,
        lambda: faults.token_lifetime_s,
        world.scenario.tenant.app_permissions,
    )
    delivery = Delivery(options, _delivery_ssl(ca_dir))
    store = SubscriptionStore(clock)
    notifier = Notifier(world, store, issuer, delivery, faults, options, injector.random)
    stats = Stats(world, delivery, issuer)
    emulator = GraphEmulator(
        world, clock, faults, options, issuer, store, delivery, notifier, stats
    )

    app = web.Application(middlewares=[stats.middleware, graph_not_found, injector.middleware])
    app[ISSUER_KEY] = issuer
    app[EMULATOR_KEY] = emulator
    Control(notifier, stats, injector, clock).add_routes(app)
    SubscriptionRoutes(store, world.tenant_id, delivery.validate).add_routes(app)
    data.add_routes(app, world)
    identity = Identity(world, issuer, options.client_certificate)
    identity.add_routes(app)
    SignIn(identity).add_routes(app)

    async def background(app: web.Application) -> AsyncIterator[None]:
        watcher = asyncio.get_running_loop().create_task(notifier.watch_expiry())
        yield
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await delivery.close()

    app.cleanup_ctx.append(background)
    return app
