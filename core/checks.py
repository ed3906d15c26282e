"""What a setting's value must be, checked before a process starts: each failure names its variable.

Values that only break later (a PEM that is not one, a port that is not a number, a version
that is NaN) are opened and parsed here, so that a process with a bad setting never starts
and says why in one line (DESIGN §3.3).
"""

from __future__ import annotations

import re
import ssl
import tomllib
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.exceptions import ConfigurationError, IngestError, UpstreamTransient

_API_VERSION = re.compile(r"\d{2,3}\.0")
MIN_SF_API_VERSION = 46  # composite upserts by external id with allOrNone (reference/salesforce.md)
MAX_SF_API_VERSION = 999


def guid(name: str, value: str) -> str:
    """A tenant id as Graph writes it in notifications: a GUID, lower-cased."""
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise ConfigurationError(name, f"must be a tenant id (a GUID), got {value!r}") from None


def sf_api_version(value: str) -> str:
    if not _API_VERSION.fullmatch(value) or not (
        MIN_SF_API_VERSION <= int(value.split(".")[0]) <= MAX_SF_API_VERSION
    ):
        raise ConfigurationError(
            "SF_API_VERSION", f"must be a version like 62.0 ({MIN_SF_API_VERSION}.0 or newer)"
        )
    return value


_CERT_REQS = ("none", "optional", "required")  # redis-py's values of ssl_cert_reqs
_TRUST_HINT = (
    "the Redis server's TLS certificate is not trusted (certificate verify failed); "
    "for an add-on with a self-signed certificate end REDIS_URL with ?ssl_cert_reqs=none"
)


def redis_url(value: str) -> str:
    """redis://, rediss:// with host and a numeric port, or unix:///path/to/socket;
    `ssl_cert_reqs`, when given, one of redis-py's values."""
    parts = urlsplit(value)
    for reqs in parse_qs(parts.query).get("ssl_cert_reqs", []):
        if reqs.lower() not in _CERT_REQS:
            raise ConfigurationError(
                "REDIS_URL", f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, got {reqs!r}"
            )
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError("REDIS_URL", "a unix:// URL needs the socket's path")
        return value
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigurationError("REDIS_URL", "the port must be a number from 1 to 65535") from None
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ConfigurationError("REDIS_URL", f"the database must be a number, got {db!r}")
    return value


def redis_safe(url: str) -> str:
    """The Redis URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}:{parts.port or 6379}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def redis_unreachable(url: str, exc: BaseException) -> IngestError:
    """What a failed connection to Redis means, in one line: a ConfigurationError when the
    server's certificate was refused (waiting will not fix it), else UpstreamTransient."""
    seen: BaseException | None = exc
    for _ in range(8):  # redis-py wraps the ssl error once or twice; a chain may loop
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError) or (
            "CERTIFICATE_VERIFY_FAILED" in str(seen)
        ):
            return ConfigurationError("REDIS_URL", _TRUST_HINT)
        seen = seen.__cause__ or seen.__context__
    return UpstreamTransient(f"Redis at {redis_safe(url)} is unreachable: {type(exc).__name__}")


def port(name: str, raw: str) -> int:
    if not raw.strip().isdigit() or not 0 < int(raw) < 65536:
        raise ConfigurationError(name, f"must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def _read(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(name, f"cannot read {path}: {exc.strerror}") from None


def certificates(name: str, path: Path) -> list[x509.Certificate]:
    """Every PEM certificate in the file; at least one."""
    try:
        found = x509.load_pem_x509_certificates(_read(name, path))
    except ValueError:
        found = []
    if not found:
        raise ConfigurationError(name, f"{path} holds no PEM certificate")
    return found


def private_key(name: str, path: Path, data: bytes | None = None) -> rsa.RSAPrivateKey:
    """The unencrypted PEM RSA private key in the file (what Graph and Salesforce take)."""
    raw = _read(name, path) if data is None else data
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # encrypted, or not a key
        kind = "is encrypted" if "encrypted" in str(exc).lower() else "holds no PEM private key"
        raise ConfigurationError(name, f"{path} {kind}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(name, f"{path} must hold an RSA private key")
    return key


def key_and_certificate(name: str, path: Path) -> None:
    """A PEM file with both the private key and its certificate (a client certificate)."""
    key = private_key(name, path)
    if not any(_matches(c, key) for c in certificates(name, path)):
        raise ConfigurationError(name, f"{path}: no certificate matches the private key")


def _matches(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    public = cert.public_key()
    return isinstance(public, rsa.RSAPublicKey) and (
        public.public_numbers() == key.public_key().public_numbers()
    )


def pair(cert_name: str, cert: Path, key_name: str, key: Path) -> None:
    """A certificate and, in another file, its private key."""
    if not _matches(certificates(cert_name, cert)[0], private_key(key_name, key)):
        raise ConfigurationError(key_name, f"{key} is not the key of {cert}")


def toml(name: str, path: Path) -> None:
    """The file parses as TOML (what it says is the policy's to judge)."""
    try:
        tomllib.loads(_read(name, path).decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigurationError(name, f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(name, f"{path} is not valid TOML: {exc}") from None
