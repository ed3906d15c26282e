"""msal's HTTP session: discovery documents cached per process (200s only), nothing else."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workers import oauth

CONFIG = "/tenant/v2.0/.well-known/openid-configuration"


class Authority(BaseHTTPRequestHandler):
    """Answers discovery with 503 the first time, then 200; every other GET with 200."""

    hits: Counter[str] = Counter()

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        fail = self.path == CONFIG and self.hits[self.path] == 1
        body = b'{"issuer": "x"}'
        self.send_response(503 if fail else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def authority() -> Iterator[str]:
    Authority.hits = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Authority)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_discovery_cached_once_it_succeeds(authority: str) -> None:
    with oauth.MsalSession() as first, oauth.MsalSession() as second:
        assert first.get(authority + CONFIG).status_code == 503  # a failure is not kept
        assert first.get(authority + CONFIG).json() == {"issuer": "x"}
        for session in (first, second, first):  # across sessions: per process
            assert session.get(authority + CONFIG).json() == {"issuer": "x"}
    assert Authority.hits[CONFIG] == 2


def test_other_requests_are_not_cached(authority: str) -> None:
    with oauth.MsalSession() as session:
        for _ in range(3):
            assert session.get(authority + "/tenant/userinfo").status_code == 200
    assert Authority.hits["/tenant/userinfo"] == 3


def test_concurrent_first_requests_fetch_once(authority: str) -> None:
    path = "/other" + CONFIG  # another tenant's: answered 200 from the first
    url = authority + path
    results: list[int] = []

    def fetch() -> None:
        with oauth.MsalSession() as session:
            results.append(session.get(url).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 8
    assert Authority.hits[path] == 1
