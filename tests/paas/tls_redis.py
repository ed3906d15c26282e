"""A redis-server that speaks TLS only, with a self-signed certificate, as managed Redis
add-ons do (Heroku's TLS plans present a chain that clients refuse as "self signed
certificate in certificate chain" unless told not to verify it)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from cryptography.hazmat.primitives import serialization

from ingest.embedded_redis import free_port
from tests import certs


class TlsRedisServer:
    """The system's redis-server (it must be built with TLS) on a free port, TLS only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ingest-tls-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0, cert_reqs: str | None = "none") -> str:
        query = "" if cert_reqs is None else f"?ssl_cert_reqs={cert_reqs}"
        return f"rediss://127.0.0.1:{self.port}/{db}{query}"

    def __enter__(self) -> TlsRedisServer:
        key = certs.new_key()
        cert = certs.self_signed(key, name="redis-addon")
        (self.dir / "key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ))  # fmt: skip
        (self.dir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        binary = shutil.which("redis-server")
        assert binary, "these tests need a system redis-server built with TLS"
        log = (self.dir / "redis.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
             "--tls-cert-file", str(self.dir / "cert.pem"),
             "--tls-key-file", str(self.dir / "key.pem"),
             "--tls-ca-cert-file", str(self.dir / "cert.pem"),
             "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--databases", "16"],
            stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 10
        while True:
            conn = redis.Redis.from_url(self.url())
            try:
                if conn.ping():
                    return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    out = (self.dir / "redis.log").read_text(errors="replace")
                    self.__exit__()
                    # A redis-server built without TLS ends at once: "FATAL CONFIG FILE ERROR".
                    raise AssertionError(f"redis-server with TLS did not start:\n{out}") from None
                time.sleep(0.05)
            finally:
                conn.close()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
