"""`rediss://` with `?ssl_cert_reqs=none`, as add-ons with self-signed certificates need: the
receiver, a worker and `ingest status` work over TLS; with the certificate verified (the
default), each says so in one line."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from core.exceptions import ConfigurationError
from core.settings import Settings
from tests.ingest import payloads as p
from tests.ingest.conftest import register_known
from tests.ingest.test_cli import configured, run
from tests.paas.procs import Process, Receiver, running, wait_for
from tests.paas.tls_redis import TlsRedisServer

_dbs = itertools.count(1)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsRedisServer]:
    with TlsRedisServer() as server:
        yield server


@pytest.fixture
def tls_db(tls_server: TlsRedisServer) -> int:
    db = next(_dbs) % 16
    conn = redis.Redis.from_url(tls_server.url(db))
    conn.flushdb()
    conn.close()
    return db


@pytest.fixture
def tls_conn(tls_server: TlsRedisServer, tls_db: int) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(tls_server.url(tls_db))
    yield conn
    conn.close()


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


class TestSettings:
    def test_rediss_urls_are_accepted(self) -> None:
        for url in ("rediss://:pw@redis.example.com:6380/0?ssl_cert_reqs=none",
                    "rediss://h:6380?ssl_cert_reqs=required", "rediss://h:6380"):  # fmt: skip
            assert Settings.from_env({"REDIS_URL": url}).redis_url == url

    def test_an_unknown_cert_reqs_names_the_variable(self) -> None:
        with pytest.raises(ConfigurationError) as exc:
            Settings.from_env({"REDIS_URL": "rediss://h:6380?ssl_cert_reqs=off"})
        assert exc.value.variable == "REDIS_URL"
        assert "none" in str(exc.value)


class TestOverTls:
    @pytest.mark.timeout(60)
    def test_status(self, tls_server: TlsRedisServer, tls_db: int, tls_conn: redis.Redis) -> None:
        tls_conn.rpush("rq:queue:ingest", "a")
        result = run("status", "--json", env={"REDIS_URL": tls_server.url(tls_db)})
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["queues"] == {"ingest": 1}

    @pytest.mark.timeout(60)
    def test_receiver_stores_a_notification(
        self, tls_server: TlsRedisServer, tls_db: int, tls_conn: redis.Redis, tmp_path: Path
    ) -> None:
        register_known(tls_conn)
        receiver = Receiver({"REDIS_URL": tls_server.url(tls_db), "GRAPH_TENANT_ID": p.TENANT},
                            tmp_path / "serve.log").start()  # fmt: skip
        with running(receiver):
            receiver.wait_listening()
            assert receiver.get("/readyz") == 200, receiver.stderr()
            body = json.dumps(p.body(p.call_record())).encode()
            assert receiver.post("/graph/notifications", body) == 202, receiver.stderr()
        assert tls_conn.llen("rq:queue:ingest") == 1

    @pytest.mark.timeout(60)
    def test_worker_runs_a_job(
        self, tls_server: TlsRedisServer, tls_db: int, tls_conn: redis.Redis, tmp_path: Path
    ) -> None:
        queue = Queue("ingest", connection=tls_conn, serializer=JSONSerializer)
        job = queue.enqueue("tests.paas.jobs.slow", "tls", 0)
        worker = Process(["worker"], configured(tls_server.url(tls_db)), tmp_path / "w.log").start()
        with running(worker):
            assert wait_for(lambda: job.get_status(refresh=True) == "finished", 30), worker.stderr()
            # RQ's scheduler, a process of its own, reached Redis over TLS too.
            assert wait_for(lambda: tls_conn.exists("rq:scheduler-lock:ingest"), 30)
            worker.sigterm()
            assert worker.wait(30) == 0, worker.stderr()
        job = Job.fetch(job.id, connection=tls_conn, serializer=JSONSerializer)
        assert job.get_status() == "finished"
        assert tls_conn.get("test:done:tls") == b"1"


class TestVerifiedCertificate:
    """Without `ssl_cert_reqs=none` the self-signed certificate is refused: one line that says
    so and how to accept it, never a traceback."""

    @pytest.mark.timeout(60)
    def test_status(self, tls_server: TlsRedisServer) -> None:
        result = run("status", "--json", env={"REDIS_URL": tls_server.url(cert_reqs=None)})
        assert result.returncode == 2  # a setting to change: waiting will not help
        line = one_line(result.stderr)
        assert "certificate verify failed" in line and "ssl_cert_reqs=none" in line

    @pytest.mark.timeout(60)
    def test_worker(self, tls_server: TlsRedisServer) -> None:
        result = run("worker", env=configured(tls_server.url(cert_reqs="required")))
        assert result.returncode == 2
        line = one_line(result.stderr)
        assert "certificate verify failed" in line and "ssl_cert_reqs=none" in line

    @pytest.mark.timeout(60)
    def test_receiver(self, tls_server: TlsRedisServer, tmp_path: Path) -> None:
        env = {"REDIS_URL": tls_server.url(cert_reqs=None), "GRAPH_TENANT_ID": p.TENANT}
        receiver = Receiver(env, tmp_path / "serve.log").start()
        with running(receiver):
            receiver.wait_listening()
            assert receiver.get("/readyz") == 503
        [warning] = [line for line in receiver.stderr().splitlines() if "redis_unreachable" in line]
        assert "certificate verify failed" in warning and "ssl_cert_reqs=none" in warning
        assert "Traceback" not in receiver.stderr()
