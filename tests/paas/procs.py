"""`ingest serve` and `ingest worker` as real processes, as a PaaS runs them: settings in the
environment, each process in its own group (a dyno's SIGTERM reaches all its processes)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ingest.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
INGEST = str(Path(sys.executable).parent / "ingest")
HEARTBEAT_TTL = 4


def wait_for(predicate: Callable[[], object], seconds: float) -> bool:
    """Polls `predicate` until it is true or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


class Process:
    """One `ingest` process; its stderr goes to a file that the test reads at the end."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "SF_"))}
        self.env.update(env)
        self.env.update(PYTHONPATH=str(ROOT), INGEST_WORKER_HEARTBEAT_TTL=str(HEARTBEAT_TTL))
        self.log = log
        self._err: IO[bytes] = log.open("wb")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self._proc = subprocess.Popen(
            [INGEST, *self.args], env=self.env, stdout=subprocess.DEVNULL, stderr=self._err,
            start_new_session=True,
        )  # fmt: skip
        return self

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self._proc is not None, "not started"
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def sigterm(self) -> None:
        """What Heroku does at a restart or scale-down: SIGTERM to every process of the dyno."""
        os.killpg(self.proc.pid, signal.SIGTERM)

    def wait(self, seconds: float) -> int | None:
        """The exit status, or None if the process still runs after `seconds`."""
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self._proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._err.close()


class Receiver(Process):
    """`ingest serve` on a free loopback port, its port given as Heroku does: `PORT`."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__(["serve", "--host", "127.0.0.1"], {**env, "PORT": str(self.port)}, log)

    def start(self) -> Receiver:
        """Start it; if another process took its port before it bound (free_port closes the
        port it found), start it again on another port."""
        for _ in range(3):
            super().start()
            lost = wait_for(lambda: self.proc.poll() is not None or self._answers(), 30)
            if not (lost and self.proc.poll() is not None and "address already in use"
                    in self.stderr()):  # fmt: skip
                return self
            self._err.seek(0)
            self._err.truncate()
            self.port = free_port()
            self.env["PORT"] = str(self.port)
        return self

    def _answers(self) -> bool:
        try:
            return self.get("/healthz") == 200
        except OSError:
            return False

    def get(self, path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    def post(self, path: str, body: bytes) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            return conn.getresponse().status
        finally:
            conn.close()

    def wait_listening(self, seconds: float = 30) -> None:
        def up() -> bool:
            try:
                return self.get("/healthz") == 200
            except OSError:
                assert self.proc.poll() is None, self.stderr()
                return False

        assert wait_for(up, seconds), self.stderr()


@contextlib.contextmanager
def running(*procs: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()
