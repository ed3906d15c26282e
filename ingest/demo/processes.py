"""Child processes of the demo: started with an environment, awaited until ready, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

INGEST = str(Path(sys.executable).parent / "ingest")


class Child:
    """One child process in its own process group, its output kept in a log file."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(args),
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "listening on" in line:
                self._ready.set()

    def wait_ready_line(self, timeout: float) -> int:
        """Wait for the child's `... listening on https://host:PORT` line (the emulators print
        one); the port it names (started with `--port 0`, the one the kernel chose)."""
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} did not start; see {self.log_path}")
        line = next(line for line in self.lines if "listening on" in line)
        return int(line.rsplit(":", 1)[1])

    def kill(self) -> None:
        """SIGKILL the whole process group (the chaos run's crash)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                self.kill()
        self._log.close()


def wait_http(url: str, timeout: float, alive: Child | None = None) -> None:
    """Wait until `url` answers 200 (the receiver's /healthz), or until `alive` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and alive.proc.poll() is not None:
            return
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered at {url}")


def run_command(args: Sequence[str], env: dict[str, str]) -> str:
    """Run one `ingest ...` command to completion; its stdout, or an error naming it."""
    done = subprocess.run(
        list(args),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(args[1:])}` failed: {done.stderr.strip()[-500:]}")
    return done.stdout
