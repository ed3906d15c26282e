"""SIGTERM drains `ingest serve`: the request in flight finishes, new connections are
refused, and the process exits 0 within Heroku's 30 s.

Heroku (devcenter.heroku.com/articles/dyno-shutdown-behavior): "This signal sends to all
processes in the dyno." "The application processes have 30 seconds to shut down cleanly, the
quicker the better. If any processes remain after that time period, the dyno manager
terminates them forcefully with SIGKILL." "Try to prevent your processes from accepting new
requests or jobs. Have them finish their current requests, or put jobs back on the queue for
other worker processes to handle."
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import redis

from tests.ingest import payloads as p
from tests.ingest.conftest import register_known
from tests.paas.procs import Receiver, running, wait_for

HEROKU_GRACE_SECONDS = 30


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.timeout(90)
def test_sigterm_lets_a_body_in_flight_finish(
    redis_url: str, redis_conn: redis.Redis, tmp_path: Path
) -> None:
    register_known(redis_conn)
    receiver = Receiver({"REDIS_URL": redis_url, "GRAPH_TENANT_ID": p.TENANT},
                        tmp_path / "serve.log").start()  # fmt: skip
    with running(receiver):
        receiver.wait_listening()
        body = json.dumps(p.body(p.call_record())).encode()
        half = len(body) // 2
        sender = socket.create_connection(("127.0.0.1", receiver.port), timeout=10)
        # `Expect: 100-continue` makes the server say when the handler has taken the request,
        # so the SIGTERM below comes while its body is provably still arriving.
        sender.sendall(
            b"POST /graph/notifications HTTP/1.1\r\nHost: receiver\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        assert sender.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sender.sendall(body[:half])

        receiver.sigterm()
        signalled = time.monotonic()
        # New connections are refused while the one in flight is still open.
        assert wait_for(lambda: refused(receiver.port), 3), "still accepting after SIGTERM"
        assert receiver.proc.poll() is None, "exited with a request in flight"
        sender.sendall(body[half:])
        answer = sender.recv(4096)
        sender.close()
        assert answer.startswith(b"HTTP/1.1 202"), answer
        assert receiver.wait(HEROKU_GRACE_SECONDS) == 0, receiver.stderr()
        assert time.monotonic() - signalled < HEROKU_GRACE_SECONDS
    assert redis_conn.llen("rq:queue:ingest") == 1  # the notification's job is stored
    assert "Traceback" not in receiver.stderr()


@pytest.mark.timeout(60)
def test_sigterm_when_idle_exits_at_once(redis_url: str, tmp_path: Path) -> None:
    receiver = Receiver({"REDIS_URL": redis_url, "GRAPH_TENANT_ID": p.TENANT},
                        tmp_path / "serve.log").start()  # fmt: skip
    with running(receiver):
        receiver.wait_listening()
        signalled = time.monotonic()
        receiver.sigterm()
        assert receiver.wait(HEROKU_GRACE_SECONDS) == 0, receiver.stderr()
        # Idle keep-alive connections do not hold the shutdown up to its timeout.
        assert time.monotonic() - signalled < 5
