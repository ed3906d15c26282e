"""`ingest serve`: run the receiver until SIGTERM, then drain it.

A PaaS stops a process with SIGTERM and kills it 30 s later (Heroku, dyno-shutdown-behavior:
"If any processes remain after that time period, the dyno manager terminates them forcefully
with SIGKILL"). aiohttp's own shutdown
(`web.run_app`) stops reading every connection at once, so a notification whose body was
still arriving got no answer and Graph had to send it again. Here SIGTERM first closes the
listening socket (new connections are refused; the platform's router sends them to another
`web` process), then waits for the requests in flight to be answered, and only then lets
aiohttp close what is left.

Connections that send no request are not kept. aiohttp closes a connection that has not
sent a complete request head only when its keep-alive timer fires, after an AppRunner's
default `keepalive_timeout` of 3,630 s: a client that opened connections and sent nothing,
or a partial head a byte at a time (slowloris), held each for an hour, and a few thousand of
them would use up the process's file descriptors. Here a new connection must deliver its
first request head within HEAD_SECONDS, and a connection idle after an answer (or sending a
later head) is closed after KEEPALIVE_SECONDS. A body has its own deadline
(`BODY_TIMEOUT_SECONDS`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import time

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import Counter

from core import defaults, logs
from core.exceptions import ConfigurationError, IngestError
from core.settings import Settings
from ingest.app import METRICS, Handler, create_app

# The wait for requests in flight, then aiohttp's own (which cancels what still runs): both
# within Heroku's 30 s. A body must arrive within BODY_TIMEOUT_SECONDS, so a request in
# flight ends well before DRAIN_SECONDS unless Redis is down, when it answers 503 in time.
DRAIN_SECONDS = 20.0
SHUTDOWN_SECONDS = 5.0
# Container allocations between two passes of the collector's youngest generation (Python's
# default: 700). A 50-item batch allocates a few thousand containers, nearly all freed by
# reference counting as the request ends, so at 700 the collector ran three passes a
# request and took 7-8 % of the receiver's CPU (measured under 50-item batches); at 10,000,
# about 1 %. Cycles (asyncio's futures, exceptions) are still collected within a few
# requests; memory stays flat (bench/soak.py).
GC_YOUNG_THRESHOLD = 10_000
# A router or Graph sends its request as soon as it has connected.
HEAD_SECONDS = 10.0
# nginx's default, and longer than the 60 s idle timeout of common load balancers, which
# must close an idle connection before the server does (else a request sent on a
# connection the server is closing fails).
KEEPALIVE_SECONDS = 75.0

log = logs.get_logger("ingest.serve")


class InFlight:
    """Counts the requests being handled (the outermost middleware), and closes connections
    whose first request head has not arrived in time."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.awaiting_head: set[RequestHandler] = set()  # connections with no request yet

    def watch_heads(self, server: web.Server, seconds: float, closed: Counter) -> None:
        """Give each new connection of `server` `seconds` to send its first request head;
        count in `closed` those closed for not sending one."""
        made = server.connection_made
        loop = asyncio.get_running_loop()

        def head_due(handler: RequestHandler) -> None:
            if handler in self.awaiting_head:
                self.awaiting_head.discard(handler)
                if handler.transport is not None:  # not closed already (a refused head)
                    closed.inc()
                    handler.force_close()

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self.awaiting_head.add(handler)
            loop.call_later(seconds, head_due, handler)

        server.connection_made = connection_made  # type: ignore[method-assign]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.awaiting_head.discard(request.protocol)
        self.count += 1
        self.idle.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if not self.count:
                self.idle.set()


def run(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure()
    host = args.host or defaults.HOST
    port = settings.port if args.port is None else args.port
    if not 0 < port < 65536:
        raise ConfigurationError("--port", "must be between 1 and 65535")
    log.info("receiver_starting", host=host, port=port)
    app = create_app(settings)
    app.on_startup.append(_settle)
    in_flight = InFlight()
    app.middlewares.insert(0, in_flight.middleware)
    asyncio.run(_serve(app, host, port, in_flight))
    return 0


async def listen(
    app: web.Application, host: str, port: int, in_flight: InFlight
) -> tuple[web.AppRunner, web.TCPSite]:
    """The receiver listening on host:port, with the connection deadlines above."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_SECONDS,
                           keepalive_timeout=KEEPALIVE_SECONDS)  # fmt: skip
    await runner.setup()
    assert runner.server is not None
    in_flight.watch_heads(runner.server, HEAD_SECONDS, app[METRICS].closed_without_request)
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:  # a port in use, an address not on this machine: one line
        await runner.cleanup()
        why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise IngestError(f"serve: cannot listen on {host}:{port}: {why}") from None
    return runner, site


async def _serve(app: web.Application, host: str, port: int, in_flight: InFlight) -> None:
    runner, site = await listen(app, host, port, in_flight)
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        started = time.monotonic()
        await site.stop()  # the listening socket closes: new connections are refused
        log.info("receiver_draining", requests_in_flight=in_flight.count)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(in_flight.idle.wait(), DRAIN_SECONDS)
        log.info("receiver_stopping", requests_in_flight=in_flight.count,
                 drained_in_seconds=round(time.monotonic() - started, 3))  # fmt: skip
    finally:
        await runner.cleanup()  # idle keep-alive connections close; what runs is cancelled


async def _settle(app: web.Application) -> None:
    """What start-up made lives as long as the process: keep it out of the collector's full
    passes, which otherwise walk all of it (40 to 80 ms, measured) in the middle of a
    request."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
