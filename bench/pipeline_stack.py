"""The pipeline benchmark's processes: Redis, both emulators, the receiver and one worker.

The receiver takes every notification Graph posts while no worker runs; the benchmark then
lifts the jobs off the queue (their hashes stay) and puts them back a phase at a time, so the
worker drains a real queue of the receiver's own jobs, undisturbed by delivery.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from emulators.graph.world import World
from emulators.scenario import Scenario
from ingest.demo.processes import INGEST, Child, run_command, wait_http
from ingest.demo.runner import Https, _policy_toml
from ingest.embedded_redis import RedisServer, free_port
from workers.ledger import OUTCOMES_KEY, Ledger

ROOT = Path(__file__).resolve().parent.parent


class CountingConnection(redis.Connection):
    """Counts the commands this client sends, so the benchmark can leave its own polls out."""

    sent = 0

    def pack_command(self, *args: Any) -> list[bytes]:
        CountingConnection.sent += 1
        return super().pack_command(*args)

    def pack_commands(self, commands: Any) -> list[bytes]:
        commands = list(commands)
        CountingConnection.sent += len(commands)
        return super().pack_commands(commands)


class Stack:
    """Owns every process and file of one benchmark run; `close()` stops and removes them."""

    def __init__(self, scenario: Scenario, scenario_path: Path, workdir: Path) -> None:
        self.scenario = scenario
        self.scenario_path = scenario_path
        self.dir = workdir
        self.world = World(scenario)
        self.children: dict[str, Child] = {}
        self.redis_server = RedisServer()
        self.order: list[tuple[str, str]] = []  # (job id, meeting id) in the receiver's order
        self.created: dict[str, str] = {}  # meeting id -> its callRecord `created` job
        self.kinds: dict[str, str] = {}  # job id -> what it is about, for the time by job

    def start(self) -> None:
        self.redis_server.start()
        graph_port, sf_port, receiver_port = free_port(), free_port(), free_port()
        ca_dir = self.dir / "ca"
        policy = dict(self.scenario.policy)
        policy.setdefault("internal_domains", list(self.scenario.tenant.domains))
        (self.dir / "policy.toml").write_text(_policy_toml(policy))
        paths = (str(ROOT), os.environ.get("PYTHONPATH"))  # the worker imports bench.noop
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GRAPH_", "SF_", "INGEST_", "POLICY_", "INTERNAL_", "REDIS_"))
        }
        env.update({
            "REDIS_URL": f"{self.redis_server.url}/0",
            "GRAPH_TENANT_ID": self.scenario.tenant.id,
            "GRAPH_CLIENT_ID": "emulator-app", "GRAPH_CLIENT_SECRET": "emulator-secret",
            "GRAPH_BASE_URL": f"https://127.0.0.1:{graph_port}/v1.0",
            "GRAPH_AUTHORITY": f"https://127.0.0.1:{graph_port}",
            "SF_INSTANCE_URL": f"https://127.0.0.1:{sf_port}",
            "SF_CLIENT_ID": "emulator-app", "SF_CLIENT_SECRET": "emulator-secret",
            "INGEST_CA_BUNDLE": str(ca_dir / "ca.pem"),
            "INGEST_PUBLIC_URL": f"http://127.0.0.1:{receiver_port}",
            "POLICY_FILE": str(self.dir / "policy.toml"),
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        })  # fmt: skip
        self.env = env
        common = ["--ca-dir", str(ca_dir), "--scenario", str(self.scenario_path)]
        graph = [INGEST, "emulator", "graph", "--port", str(graph_port), *common,
                 "--updated-delay", "0.2"]  # fmt: skip
        self.children["graph"] = Child("graph-emulator", graph, env, self.dir)
        self.children["graph"].wait_ready_line(30)  # it creates the CA both emulators share
        sf = [INGEST, "emulator", "salesforce", "--port", str(sf_port), *common]
        self.children["salesforce"] = Child("salesforce-emulator", sf, env, self.dir)
        self.children["salesforce"].wait_ready_line(30)
        self.graph = Https(f"https://127.0.0.1:{graph_port}", ca_dir / "ca.pem")
        self.salesforce = Https(f"https://127.0.0.1:{sf_port}", ca_dir / "ca.pem")
        receiver = [INGEST, "serve", "--host", "127.0.0.1", "--port", str(receiver_port)]
        self.children["receiver"] = Child("receiver", receiver, env, self.dir)
        wait_http(f"http://127.0.0.1:{receiver_port}/healthz", 30)
        for user in self.scenario.users:
            if user.eci:
                run_command([INGEST, "users", "add", user.upn], env)
        run_command([INGEST, "subscriptions", "ensure"], env)
        pool = redis.ConnectionPool.from_url(env["REDIS_URL"], connection_class=CountingConnection)
        self.conn = redis.Redis(connection_pool=pool)
        self.queue = Queue("ingest", connection=self.conn, serializer=JSONSerializer)

    # -- the receiver's jobs ---------------------------------------------------------------
    def capture(self, per_meeting: int = 3, timeout: float = 90.0) -> int:
        """Play every meeting with no worker running; lift the receiver's jobs off the queue.

        Waits for `per_meeting` jobs a meeting (callRecord created and updated, transcript),
        or until the count stops growing. Returns how many jobs were taken.
        """
        expected = per_meeting * len(self.scenario.meetings)
        self.graph.call("POST", "/_emulator/play", {})
        deadline, last, still = time.monotonic() + timeout, -1, 0
        while time.monotonic() < deadline:
            count = self.queue.count
            if count >= expected:
                break
            still = still + 1 if count == last else 0
            if still >= 20 and count:  # 4 s without a new job
                break
            last = count
            time.sleep(0.2)
        self.children.pop("receiver").stop()
        pipe = self.conn.pipeline()
        pipe.lrange(self.queue.key, 0, -1)
        pipe.delete(self.queue.key)
        ids = [i.decode() for i in pipe.execute()[0]]
        for job in Job.fetch_many(ids, self.conn, serializer=JSONSerializer):
            assert job is not None
            payload: dict[str, Any] = job.args[0]
            meeting = self._meeting_of(payload)
            self.order.append((job.id, meeting))
            kind = payload.get("kind")
            self.kinds[job.id] = f"{kind} {payload.get('changeType')}".replace("s ", " ")
            if payload.get("kind") == "callRecords" and payload.get("changeType") == "created":
                self.created[meeting] = job.id
        return len(ids)

    def _meeting_of(self, payload: dict[str, Any]) -> str:
        ids = payload.get("ids") or {}
        found = None
        if ids.get("callRecordId"):
            found = self.world.meeting_by_call_record(str(ids["callRecordId"]))
        elif ids.get("meetingId"):
            found = self.world.meeting_by_online_meeting(str(ids["meetingId"]))
        if found is None:
            raise RuntimeError(f"a notification job about no scenario meeting: {ids}")
        return found

    def release(self, job_ids: list[str]) -> float:
        """Put jobs back on the queue in one round trip; the time they were put."""
        pipe = self.conn.pipeline()
        for job_id in job_ids:
            self.queue.push_job_id(job_id, pipeline=pipe)
        at = time.time()
        pipe.execute()
        return at

    # -- waiting and reading ---------------------------------------------------------------
    def pushed(self) -> int:
        return int(self.conn.hget(OUTCOMES_KEY, "pushed") or 0)

    def settled(self) -> int:
        counts = self.conn.hgetall(OUTCOMES_KEY)
        return sum(int(v) for v in counts.values())

    def wait_settled(self, total: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.settled() < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.settled()}/{total} meetings settled in {timeout:g} s")
            if self.children["worker"].proc.poll() is not None:
                raise RuntimeError(f"the worker exited; see {self.children['worker'].log_path}")
            time.sleep(0.02)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until the queue is empty and no job runs."""
        started = StartedJobRegistry(queue=self.queue)
        deadline = time.monotonic() + timeout
        while self.queue.count or started.count:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not drain the queue")
            time.sleep(0.02)

    def outcome(self, meeting: str) -> tuple[str, float]:
        """A meeting's outcome and when it was set (POSIX time)."""
        ledger = Ledger(self.conn)
        key = ledger.find(self.world.call_record_id(meeting)) or ""
        entry = ledger.meeting(key)
        at = entry.get("outcome_at")
        return entry.get("outcome", ""), datetime.fromisoformat(at).timestamp() if at else 0.0

    def job_seconds(self, meetings: list[str]) -> dict[str, float]:
        """Seconds the worker spent in each kind of job of `meetings` (started to ended)."""
        ledger = Ledger(self.conn)
        wanted = set(meetings)
        ids = [j for j, m in self.order if m in wanted]
        kinds = dict(self.kinds)
        for meeting in meetings:
            push = f"push-{ledger.find(self.world.call_record_id(meeting))}"
            ids.append(push)
            kinds[push] = "push"
        out: dict[str, float] = {}
        for job in Job.fetch_many(ids, self.conn, serializer=JSONSerializer):
            if job is not None and job.started_at and job.ended_at:
                kind = kinds[job.id]
                out[kind] = out.get(kind, 0.0) + (job.ended_at - job.started_at).total_seconds()
        return out

    def stats(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The Graph and the Salesforce emulator's `/_emulator/stats`."""
        return self.graph.call("GET", "/_emulator/stats"), self.salesforce.call(
            "GET", "/_emulator/stats"
        )

    def redis_commands(self) -> dict[str, int]:
        """Commands Redis processed, by command, the benchmark's own left out (`_total`)."""
        info = self.conn.info("commandstats")
        out = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}
        out["_total"] = sum(out.values()) - CountingConnection.sent
        return out

    def set_latency(self, graph_ms: int, salesforce_ms: int) -> None:
        self.graph.call("POST", "/_emulator/faults", {"latency_ms": graph_ms})
        self.salesforce.call("POST", "/_emulator/faults", {"latency_ms": salesforce_ms})

    # -- the worker ------------------------------------------------------------------------
    def start_worker(self, profile: str | None = None) -> int:
        """Start `ingest worker` (under cProfile writing to `profile` when given); its pid."""
        args = [INGEST, "worker"]
        if profile:
            args = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "ingest", "worker"]
        self.children["worker"] = Child("worker", args, self.env, self.dir)
        return self.children["worker"].proc.pid

    def pids(self) -> dict[str, int]:
        """The processes whose CPU time the benchmark reports."""
        out = {name: child.proc.pid for name, child in self.children.items()}
        if self.redis_server.proc is not None:
            out["redis"] = self.redis_server.proc.pid
        return out

    def close(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()
        self.redis_server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ingest-bench-"))
