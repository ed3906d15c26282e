"""Run an emulator's aiohttp app over HTTPS until SIGTERM or SIGINT, announcing when ready."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

from emulators.tls import server_context


async def serve_forever(
    app: web.Application, host: str, port: int, ca_dir: Path, name: str
) -> None:
    """Serve `app` on https://host:port; print one ready line on stdout; stop on SIGTERM/SIGINT.

    Port 0 lets the kernel choose: the ready line names the port it chose."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=server_context(ca_dir))
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = runner.addresses[0][1] if runner.addresses else port
    print(f"{name} emulator listening on https://{host}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    print(f"{name} emulator stopped", file=sys.stderr, flush=True)


def run(app: web.Application, host: str, port: int, ca_dir: Path, name: str) -> int:
    asyncio.run(serve_forever(app, host, port, ca_dir, name))
    return 0
