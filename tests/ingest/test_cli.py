"""The `ingest` command: exit statuses, one-line errors, and `status --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ingest.cli import main
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
    """`ingest worker --burst` runs queued jobs with the product's settings and exits."""

    @pytest.mark.timeout(60)
    def test_burst_runs_the_queue(self, redis_url: str, redis_conn: redis.Redis) -> None:
        from rq import Queue
        from rq.serializers import JSONSerializer

        queue = Queue("ingest", connection=redis_conn, serializer=JSONSerializer)
        payload = {
            "kind": "callRecords",
            "subscriptionId": p.CR_SUB,
            "changeType": "created",
            "resource": "communications/callRecords/x",
            "ids": {"callRecordId": "x"},
        }
        job = queue.enqueue("workers.jobs.handle_notification", payload)
        result = run("worker", "--burst", env={"REDIS_URL": redis_url})
        assert result.returncode == 0, result.stderr
        job.refresh()
        # The job ran with its payload (Graph is not configured here, so it cannot finish).
        assert job.get_status() != "queued"
        assert redis_conn.hget("ingest:ledger:resource:callRecords:x", "notifications") == b"1"


class TestServe:
    """`ingest serve` answers the handshake, stores notifications, and stops on SIGTERM."""

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
