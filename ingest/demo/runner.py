"""Runs the demo: Redis, both emulators, the receiver, two workers, users, subscriptions, play."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import ssl
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from core import keys
from emulators.graph.world import World
from emulators.scenario import Scenario, User
from ingest.demo.connect import connect
from ingest.demo.processes import INGEST, Child, run_command, wait_http
from ingest.embedded_redis import RedisServer, free_port
from workers.ledger import Ledger

SETTLED = ("pushed", "skipped", "no_transcript", "failed")
PREFER_LOCK_HOLDER_S = 10.0  # the chaos run waits this long for a worker holding a lock
Progress = Callable[[str], None]


@dataclass
class DemoOptions:
    scenario: Scenario
    scenario_path: Path | None
    chaos: bool = False
    timeout_s: float = 150.0
    transcript_window_s: int = 20
    keep_dir: bool = False


@dataclass
class DemoRun:
    """What the demo saw: per scenario meeting its ledger entry, and the emulators' stats."""

    meetings: dict[str, dict[str, Any]] = field(default_factory=dict)
    graph_stats: dict[str, Any] = field(default_factory=dict)
    salesforce_stats: dict[str, Any] = field(default_factory=dict)
    salesforce_dump: dict[str, Any] = field(default_factory=dict)
    settled: bool = False
    seconds: float = 0.0
    killed: dict[str, Any] = field(default_factory=dict)  # chaos: the worker and its job
    chaos: bool = False


class Https:
    """A tiny JSON client for the emulators' control routes, trusting their CA."""

    def __init__(self, base: str, ca_file: Path) -> None:
        self.base = base
        self.context = ssl.create_default_context(cafile=str(ca_file))

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, context=self.context, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _policy_toml(policy: dict[str, Any]) -> str:
    """The scenario's `policy` as a POLICY_FILE: keys, then each object as a `[table]`
    (`trackers`). JSON strings, numbers, booleans and arrays are valid TOML values."""
    plain = {k: v for k, v in policy.items() if not isinstance(v, dict)}
    lines = [f"{_toml_key(k)} = {json.dumps(v)}" for k, v in plain.items()]
    for key, table in policy.items():
        if isinstance(table, dict):
            lines.append(f"[{_toml_key(key)}]")
            lines.extend(f"{_toml_key(str(k))} = {json.dumps(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


class Demo:
    """Owns every process and file of one demo run; `close()` stops and removes them."""

    def __init__(self, options: DemoOptions, progress: Progress) -> None:
        self.options = options
        self.progress = progress
        self.dir = Path(tempfile.mkdtemp(prefix="ingest-demo-"))
        self.children: dict[str, Child] = {}
        self.redis_server: RedisServer | None = None
        self._pushed_at_expiry = 0  # chaos: pushed meetings when sessions last expired
        self.world = World(options.scenario)

    # -- set-up ------------------------------------------------------------------------------
    def _redis_url(self) -> str:
        url = os.environ.get("REDIS_URL")
        if url:
            return url
        self.redis_server = RedisServer(prefer_system=False).start()
        return f"{self.redis_server.url}/0"

    def _env(
        self, redis_url: str, graph_port: int, sf_port: int, receiver_port: int
    ) -> dict[str, str]:
        scenario = self.options.scenario
        ca = self.dir / "ca" / "ca.pem"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GRAPH_", "SF_", "INGEST_", "POLICY_", "INTERNAL_"))
        }
        env.update(
            {
                "REDIS_URL": redis_url,
                "GRAPH_TENANT_ID": scenario.tenant.id,
                "GRAPH_CLIENT_ID": "emulator-app",
                "GRAPH_CLIENT_SECRET": "emulator-secret",
                "GRAPH_BASE_URL": f"https://127.0.0.1:{graph_port}/v1.0",
                "GRAPH_AUTHORITY": f"https://127.0.0.1:{graph_port}",
                "SF_INSTANCE_URL": f"https://127.0.0.1:{sf_port}",
                "SF_CLIENT_ID": "emulator-app",
                "SF_CLIENT_SECRET": "emulator-secret",
                "INGEST_CA_BUNDLE": str(ca),
                "INGEST_PUBLIC_URL": f"http://127.0.0.1:{receiver_port}",
                "INGEST_TRANSCRIPT_WINDOW_SECONDS": str(self.options.transcript_window_s),
                "INGEST_TRANSCRIPT_FIRST_INTERVAL_SECONDS": "2",
                "INGEST_WORKER_HEARTBEAT_TTL": "6",
                # Seals the connect flow's cookie and the connected user's tokens in Redis.
                "INGEST_SECRET_KEY": secrets.token_urlsafe(32),
                "PYTHONUNBUFFERED": "1",
            }
        )
        policy = dict(scenario.policy)
        if "internal_domains" not in policy:
            policy["internal_domains"] = list(scenario.tenant.domains)
        policy_file = self.dir / "policy.toml"
        policy_file.write_text(_policy_toml(policy))
        env["POLICY_FILE"] = str(policy_file)
        return env

    def start(self) -> dict[str, str]:
        opts = self.options
        redis_url = self._redis_url()
        ca_dir = str(self.dir / "ca")
        scenario_args = ["--scenario", str(opts.scenario_path)] if opts.scenario_path else []
        self.progress("starting the Graph and Salesforce emulators")
        # Port 0: each emulator binds a port the kernel chooses and names it in its ready line,
        # so no other process can take a port between choosing it and binding it.
        emulator_env = self._env(redis_url, 0, 0, 0)  # the emulators read none of its URLs
        graph_args = [INGEST, "emulator", "graph", "--port", "0", "--ca-dir", ca_dir,
                      *scenario_args, *self._graph_fault_flags()]  # fmt: skip
        self.children["graph"] = Child("graph-emulator", graph_args, emulator_env, self.dir)
        # The Salesforce emulator waits for the CA the Graph emulator creates, so both share it.
        graph_port = self.children["graph"].wait_ready_line(30)
        sf_args = [INGEST, "emulator", "salesforce", "--port", "0", "--ca-dir", ca_dir,
                   *scenario_args, *self._salesforce_fault_flags()]  # fmt: skip
        self.children["salesforce"] = Child("salesforce-emulator", sf_args, emulator_env, self.dir)
        sf_port = self.children["salesforce"].wait_ready_line(30)
        self.graph = Https(f"https://127.0.0.1:{graph_port}", self.dir / "ca" / "ca.pem")
        self.salesforce = Https(f"https://127.0.0.1:{sf_port}", self.dir / "ca" / "ca.pem")

        self.progress("starting the receiver and two workers")
        # The receiver must know its public URL before it binds: a port taken in between
        # makes it exit, and it is started again on another.
        for _ in range(3):
            receiver_port = free_port()
            env = self._env(redis_url, graph_port, sf_port, receiver_port)
            receiver = Child("receiver", [INGEST, "serve", "--host", "127.0.0.1",
                                          "--port", str(receiver_port)], env, self.dir)  # fmt: skip
            self.children["receiver"] = receiver
            wait_http(f"http://127.0.0.1:{receiver_port}/healthz", 30, alive=receiver)
            if receiver.proc.poll() is None:
                break
            receiver.stop()
        else:
            raise RuntimeError(f"the receiver did not start; see {receiver.log_path}")
        self.env = env
        for n in (1, 2):
            self.children[f"worker{n}"] = Child(f"worker{n}", [INGEST, "worker"], env, self.dir)

        eci = [u for u in opts.scenario.users if u.eci]
        connected = _connecting(opts.scenario)
        if connected is not None:
            # Signed in with delegated Files.Read: their recorded meetings get a link.
            self.progress(f"connecting {connected.upn} through the connect flow (sign-in page)")
            connect(env["INGEST_PUBLIC_URL"], connected.id, self.dir / "ca" / "ca.pem")
        added = [u for u in eci if u is not connected]
        self.progress(f"adding {len(added)} ECI users as an admin and ensuring subscriptions")
        for user in added:
            run_command([INGEST, "users", "add", user.upn], env)
        run_command([INGEST, "subscriptions", "ensure"], env)
        return env

    def _graph_fault_flags(self) -> list[str]:
        if not self.options.chaos:
            return []
        return [
            "--rate-429",
            "0.15",
            "--retry-after",
            "1",
            "--rate-503",
            "0.05",
            "--duplicate-rate",
            "0.5",
            "--delay-s",
            "1",
        ]

    def _salesforce_fault_flags(self) -> list[str]:
        if not self.options.chaos:
            return []
        return ["--rate-503", "0.15"]

    # -- the run -----------------------------------------------------------------------------
    def play_and_wait(self) -> DemoRun:
        opts = self.options
        run = DemoRun(chaos=opts.chaos)
        ids = [m.id for m in opts.scenario.meetings]
        started = time.monotonic()
        self.progress(f"playing {len(ids)} meetings: Graph posts their notifications now")
        self.graph.call("POST", "/_emulator/play", {"meetings": ids})
        conn = redis.Redis.from_url(self.env["REDIS_URL"])
        last_line = ""
        while True:
            run.meetings = {mid: self._status(conn, mid) for mid in ids}
            done = [m for m, e in run.meetings.items() if _settled(e)]
            line = f"{len(done)}/{len(ids)} meetings settled"
            if line != last_line:
                self.progress(line)
                last_line = line
            if opts.chaos and not run.killed:
                run.killed = self._kill_a_busy_worker(conn, time.monotonic() - started)
            if opts.chaos and len(done) < len(ids):
                self._expire_salesforce_sessions(run.meetings)
            if len(done) == len(ids):
                run.settled = True
                break
            if time.monotonic() - started > opts.timeout_s:
                for mid in ids:  # what each unsettled meeting is waiting for
                    if mid not in done:
                        self.progress(f"not settled after {opts.timeout_s:.0f} s: {mid} "
                                      f"{_waiting_for(run.meetings[mid])}")  # fmt: skip
                break
            time.sleep(0.5)
        run.seconds = time.monotonic() - started
        if run.killed:  # what became of the job the killed worker was running
            with contextlib.suppress(NoSuchJobError):
                job = Job.fetch(run.killed["job"], connection=conn)
                run.killed["job_status"] = job.get_status().value
        run.graph_stats = self.graph.call("GET", "/_emulator/stats")
        run.salesforce_stats = self.salesforce.call("GET", "/_emulator/stats")
        run.salesforce_dump = self.salesforce.call("GET", "/_emulator/dump")
        return run

    def _kill_a_busy_worker(self, conn: redis.Redis, playing_for: float) -> dict[str, Any]:
        """The chaos run's crash: SIGKILL a worker process while RQ says it runs a job, start
        another; the worker and its job are returned (empty while no worker is busy). A worker
        holding a meeting lock is preferred, for the first few seconds of play only: killed
        there, its meeting stays locked until the lock lapses."""
        pids = {c.proc.pid: name for name, c in self.children.items() if name.startswith("worker")}
        holders = _lock_holders(conn)
        busy: list[tuple[bool, str, str]] = []
        for worker in Worker.all(connection=conn):
            name = pids.get(worker.pid or 0)
            job_id = worker.get_current_job_id()
            if name is None or not job_id or self.children[name].proc.poll() is not None:
                continue
            busy.append((worker.pid in holders, name, job_id))
        busy.sort(reverse=True)  # lock holders first
        if not busy or (not busy[0][0] and playing_for < PREFER_LOCK_HOLDER_S):
            return {}
        held, name, job_id = busy[0]
        where = " holding a meeting lock" if held else ""
        self.progress(f"chaos: killing {name} mid-job ({job_id}){where} and starting a replacement")
        self.children[name].kill()
        self.children["worker3"] = Child("worker3", [INGEST, "worker"], self.env, self.dir)
        return {"worker": name, "job": job_id, "held_meeting_lock": held}

    def _expire_salesforce_sessions(self, meetings: dict[str, dict[str, Any]]) -> None:
        """The chaos run's expired session: once workers hold Salesforce sessions (a meeting
        was pushed), expire them, again after each push until Salesforce has refused one."""
        pushed = sum(1 for e in meetings.values() if e.get("outcome") == "pushed")
        if pushed == 0 or pushed == self._pushed_at_expiry:
            return
        stats = self.salesforce.call("GET", "/_emulator/stats")
        if stats.get("rejected", {}).get("invalid_session", 0):
            self._pushed_at_expiry = -1  # done: a request was refused and signed in again
            return
        self._pushed_at_expiry = pushed
        self.progress("chaos: expiring the Salesforce sessions")
        self.salesforce.call("POST", "/_emulator/faults", {"expire_sessions_now": True})

    def _status(self, conn: redis.Redis, meeting_id: str) -> dict[str, Any]:
        ledger = Ledger(conn)
        for ref in (
            self.world.online_meeting_id(meeting_id),
            self.world.call_record_id(meeting_id),
        ):
            key = ledger.find(ref)
            if key:
                entry: dict[str, Any] = dict(ledger.meeting(key))
                ids = entry.get("salesforce_ids")
                entry["salesforce_ids"] = json.loads(ids) if ids else {}
                return entry
        return {}

    def close(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.options.keep_dir:
            print(f"demo files kept in {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _connecting(scenario: Scenario) -> User | None:
    """The ECI user the demo connects through the connect flow: the organizer of the first
    recorded meeting (the others are added by an admin, whose recordings get no link)."""
    eci = {u.upn.lower(): u for u in scenario.users if u.eci}
    for meeting in scenario.meetings:
        if meeting.recording and meeting.organizer.lower() in eci:
            return eci[meeting.organizer.lower()]
    return None


def _lock_holders(conn: redis.Redis) -> set[int]:
    """Process ids of the workers holding a meeting lock (its token begins "pid:")."""
    names = list(conn.scan_iter(f"{keys.MEETING_LOCK}:*", count=1000))
    holders = set()
    tokens: list[bytes | None] = conn.mget(names) if names else []  # type: ignore[assignment]
    for token in tokens:
        pid = (token or b"").split(b":", 1)[0]
        if pid.isdigit():
            holders.add(int(pid))
    return holders


def _waiting_for(entry: dict[str, Any]) -> str:
    """One line on an unsettled meeting's ledger entry: what it still waits for."""
    if not entry:
        return "(no ledger entry: no notification of it was handled)"
    if entry.get("outcome") == "pushed":
        return (f"(pushed; callRecord {entry.get('call_record_id') or 'not yet known'}, "
                f"written {entry.get('written_call_record_id') or 'none'})")  # fmt: skip
    shown = ("outcome", "decision", "reason", "last_error", "call_record_id")
    fields = ", ".join(f"{k}={entry[k]}" for k in shown if entry.get(k))
    return f"({fields or 'undecided'})"


def _settled(entry: dict[str, Any]) -> bool:
    """A meeting has its outcome and, once pushed, its callRecord id in Salesforce (a late
    callRecord fills it in after the push): every meeting of a scenario has a callRecord."""
    if entry.get("outcome") not in SETTLED:
        return False
    cr_id = entry.get("call_record_id")
    return entry["outcome"] != "pushed" or bool(
        cr_id and cr_id == entry.get("written_call_record_id")
    )
