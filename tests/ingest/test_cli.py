"""The `ingest` command: exit statuses, one-line errors, and `status --json`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ingest.cli import main
from tests.e2e.harness import Stack
from tests.e2e.scenarios import meeting, scenario
from tests.ingest import payloads as p
from workers import registry

INGEST = str(Path(sys.executable).parent / "ingest")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "SF_"))}
    full_env.update(env or {})
    return subprocess.run(
        [INGEST, *args], capture_output=True, text=True, env=full_env, timeout=60, check=False
    )


class TestUsage:
    """Bad usage and bad configuration exit 2 with one line that says why."""

    def test_unknown_command(self) -> None:
        result = run("frobnicate")
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1

    def test_bad_setting_names_the_variable(self) -> None:
        result = run("status", env={"REDIS_URL": "http://nope"})
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert "REDIS_URL" in result.stderr

    def test_bad_port(self) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "--port", "notaport"])
        assert exit_.value.code == 2
        result = run("serve", "--port", "70000")
        assert result.returncode == 2
        assert "--port" in result.stderr

    def test_demo_with_a_bad_scenario(self, tmp_path: Path) -> None:
        bad = tmp_path / "scenario.json"
        bad.write_text('{"tenant": {"id": "t"}, "meetings": [{}]}')
        result = run("demo", "--scenario", str(bad))
        assert result.returncode == 2
        assert result.stderr.startswith("ingest demo: scenario:")
        assert len(result.stderr.strip().splitlines()) == 1


class TestStatus:
    """`ingest status --json` prints one JSON document with DESIGN §3.1's keys."""

    def test_json_document(self, redis_url: str, redis_conn: redis.Redis) -> None:
        registry.save(
            redis_conn,
            registry.Subscription(
                id=p.CR_SUB,
                resource="communications/callRecords",
                kind="callRecords",
                client_state=p.CR_STATE,
                tenant_id=p.TENANT,
                expires_at="2099-01-01T00:00:00+00:00",
            ),
        )
        redis_conn.rpush("rq:queue:ingest", "a", "b")
        result = run("status", "--json", env={"REDIS_URL": redis_url})
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["queues"] == {"ingest": 2}
        assert doc["failed"] == 0
        assert doc["meetings"] == {"pushed": 0, "skipped": 0, "no_transcript": 0, "failed": 0}
        [sub] = doc["subscriptions"]
        assert sub["id"] == p.CR_SUB
        assert sub["expires_in_seconds"] > 0
        assert p.CR_STATE not in result.stdout

    def test_text_output(self, redis_url: str) -> None:
        result = run("status", env={"REDIS_URL": redis_url})
        assert result.returncode == 0
        assert "queues:" in result.stdout

    def test_unreachable_redis_is_a_failure(self) -> None:
        from ingest.embedded_redis import free_port

        result = run(
            "status", "--json", env={"REDIS_URL": f"redis://:pw@127.0.0.1:{free_port()}/0"}
        )
        assert result.returncode == 1
        assert result.stdout == ""
        assert "pw" not in result.stderr
        assert "unreachable" in result.stderr


class TestWorker:
    """`ingest worker --burst` checks its settings, runs the queued jobs to the end with the
    product's settings, and exits."""

    @pytest.mark.timeout(90)
    def test_burst_runs_the_queue(
        self, redis_url: str, redis_conn: redis.Redis, tmp_path: Path
    ) -> None:
        from rq import Queue
        from rq.serializers import JSONSerializer

        doc = scenario(meeting("m1", organizer="bob@contoso.com"))  # not an ECI user: skipped
        with Stack(doc, redis_url, tmp_path) as stack:
            stack.play("m1")  # the meeting happens; no subscription, so no notification
            cr_id = stack.world.call_record_id("m1")
            queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
            payload = {
                "kind": "callRecords",
                "subscriptionId": p.CR_SUB,
                "changeType": "created",
                "resource": f"communications/callRecords/{cr_id}",
                "ids": {"callRecordId": cr_id},
            }
            job = queue.enqueue("workers.jobs.handle_notification", payload)
            result = run("worker", "--burst", env=stack.env())
            assert result.returncode == 0, result.stderr
            job.refresh()
            assert job.get_status() == "finished", result.stderr
            key = redis_conn.get(f"ingest:ledger:alias:cr:{cr_id}")
            assert key is not None
            state = redis_conn.hgetall(f"ingest:ledger:meeting:{key.decode()}")
            assert state[b"outcome"] == b"skipped"
            assert state[b"reason"] == b"recorder_not_eci_user"

    @pytest.mark.parametrize(
        ("missing", "variable"),
        [("GRAPH_TENANT_ID", "GRAPH_TENANT_ID"), ("SF_INSTANCE_URL", "SF_INSTANCE_URL"),
         ("SF_CLIENT_SECRET", "SF_CLIENT_SECRET")],
    )  # fmt: skip
    def test_refuses_to_start_without_what_jobs_need(
        self, missing: str, variable: str, redis_url: str, redis_conn: redis.Redis
    ) -> None:
        env = {**configured(redis_url)}
        env.pop(missing)
        result = run("worker", "--burst", env=env)
        assert result.returncode == 2
        assert variable in result.stderr and len(result.stderr.strip().splitlines()) == 1

    def test_refuses_a_policy_file_the_policy_rejects(self, redis_url: str, tmp_path: Path) -> None:
        policy = tmp_path / "policy.toml"
        policy.write_text('min_duration_seconds = "a minute"\n')  # TOML, but not a policy
        result = run("worker", "--burst", env={**configured(redis_url), "POLICY_FILE": str(policy)})
        assert result.returncode == 2
        assert "POLICY_FILE" in result.stderr and "Traceback" not in result.stderr


def configured(redis_url: str) -> dict[str, str]:
    """Everything a worker needs at start, pointing nowhere (these runs stop before a job)."""
    return {
        "REDIS_URL": redis_url,
        "GRAPH_TENANT_ID": p.TENANT,
        "GRAPH_CLIENT_ID": "app",
        "GRAPH_CLIENT_SECRET": "secret",
        "INTERNAL_DOMAINS": "contoso.com",
        "SF_INSTANCE_URL": "https://127.0.0.1:9",
        "SF_CLIENT_ID": "app",
        "SF_CLIENT_SECRET": "secret",
    }


class TestServe:
    """`ingest serve` answers the handshake, stores notifications, and stops on SIGTERM."""

    def test_port_in_use_is_one_line(self, redis_url: str) -> None:
        """A port another process holds: exit 1 with one line naming it, no traceback."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = run("serve", "--host", "127.0.0.1", "--port", str(port),
                         env={"REDIS_URL": redis_url, "GRAPH_TENANT_ID": p.TENANT})  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("ingest:")]
        assert errors == [
            f"ingest: serve: cannot listen on 127.0.0.1:{port}: address already in use"
        ]

    @pytest.mark.timeout(60)
    def test_serves_and_stops_cleanly(self, redis_url: str, redis_conn: redis.Redis) -> None:
        import http.client
        import signal
        import time

        from ingest.embedded_redis import free_port
        from tests.ingest.conftest import register_known

        register_known(redis_conn)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "SF_"))}
        env.update(REDIS_URL=redis_url, GRAPH_TENANT_ID=p.TENANT)
        proc = subprocess.Popen(
            [INGEST, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("POST", "/graph/lifecycle?validationToken=a%20b")
                    resp = conn.getresponse()
                    answer = (resp.status, resp.read())
                    conn.close()
                    break
                except OSError:
                    conn.close()
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            assert answer == (200, b"a b")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(
                "POST",
                "/graph/notifications",
                body=json.dumps(p.body(p.call_record())),
                headers={"Content-Type": "application/json"},
            )
            assert conn.getresponse().status == 202
            conn.close()
            assert redis_conn.llen("rq:queue:ingest") == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert b"clientState" not in err and p.CR_STATE.encode() not in err
