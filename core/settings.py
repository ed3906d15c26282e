"""The product's settings: read once from the environment into one frozen object."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from core import checks, defaults
from core.exceptions import ConfigurationError

_MONTH = 30 * 86400.0  # the longest interval or lifetime any setting may name
MIN_SECRET_KEY = 16
MIN_OPS_TOKEN = 32  # DESIGN §3.3
SECRET_FIELDS = frozenset(
    {"graph_client_secret", "sf_client_secret", "secret_key", "ops_token"},
)


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses, the only hosts allowed plain http."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url(env: Mapping[str, str], name: str, default: str | None, schemes: set[str]) -> str | None:
    raw = env.get(name, "").strip() or default
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "unix"):
        allowed = ", ".join(sorted(schemes))
        raise ConfigurationError(name, f"must be a URL with scheme {allowed}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(name, "must use https (plain http is allowed on loopback only)")
    return raw.rstrip("/")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigurationError(name, f"no readable file at {raw}")
    return path


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 1, maximum: int = 2**31
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"must be a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(name, f"must be from {minimum} to {maximum}")
    return value


def _float(
    env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float = _MONTH
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(name, f"must be a number of seconds, got {raw!r}") from None
    if not minimum <= value <= maximum:  # also rejects NaN and infinities
        raise ConfigurationError(name, f"must be from {minimum:g} to {maximum:g} seconds")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(name, f"must be true or false, got {raw!r}")


def _tenants(env: Mapping[str, str]) -> tuple[str | None, tuple[str, ...]]:
    """GRAPH_TENANT_ID and the allow-list it defaults (DESIGN §3.3), each a GUID."""
    raw = _str(env, "GRAPH_TENANT_ID")
    tenant = checks.guid("GRAPH_TENANT_ID", raw) if raw else None
    allowed = tuple(
        checks.guid("GRAPH_ALLOWED_TENANTS", t) for t in _csv(env, "GRAPH_ALLOWED_TENANTS")
    )
    return tenant, allowed or ((tenant,) if tenant else ())


def _files(env: Mapping[str, str]) -> dict[str, Path | None]:
    """The PEM and TOML files, each opened and parsed now so that a bad one stops start-up."""
    out = {
        name: _path(env, variable)
        for name, variable in (
            ("graph_client_certificate_path", "GRAPH_CLIENT_CERTIFICATE_PATH"),
            ("graph_encryption_cert_path", "GRAPH_ENCRYPTION_CERT_PATH"),
            ("graph_encryption_key_path", "GRAPH_ENCRYPTION_KEY_PATH"),
            ("sf_private_key_path", "SF_PRIVATE_KEY_PATH"),
            ("ca_bundle", "INGEST_CA_BUNDLE"),
            ("policy_file", "POLICY_FILE"),
        )
    }
    enc_cert, enc_key = out["graph_encryption_cert_path"], out["graph_encryption_key_path"]
    if (enc_cert is None) != (enc_key is None):
        missing = "GRAPH_ENCRYPTION_KEY_PATH" if enc_key is None else "GRAPH_ENCRYPTION_CERT_PATH"
        raise ConfigurationError(missing, "rich notifications need both the certificate and key")
    if enc_cert is not None and enc_key is not None:
        checks.pair("GRAPH_ENCRYPTION_CERT_PATH", enc_cert, "GRAPH_ENCRYPTION_KEY_PATH", enc_key)
    if (path := out["graph_client_certificate_path"]) is not None:
        checks.key_and_certificate("GRAPH_CLIENT_CERTIFICATE_PATH", path)
    if (path := out["sf_private_key_path"]) is not None:
        checks.private_key("SF_PRIVATE_KEY_PATH", path)
    if (path := out["ca_bundle"]) is not None:
        checks.certificates("INGEST_CA_BUNDLE", path)
    if (path := out["policy_file"]) is not None:
        checks.toml("POLICY_FILE", path)
    return out


def _secret(env: Mapping[str, str], name: str, minimum: int) -> str | None:
    value = _str(env, name)
    if value is not None and len(value) < minimum:
        raise ConfigurationError(name, f"must be at least {minimum} characters")
    return value


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())


def _str(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _clock_settings(env: Mapping[str, str]) -> dict[str, float]:
    """The clock's intervals; the lock must outlive a tick so that a leader keeps it."""
    tick = _float(env, "INGEST_CLOCK_TICK_SECONDS", defaults.CLOCK_TICK_SECONDS, 0.05)
    ttl = _float(env, "INGEST_CLOCK_LOCK_TTL_SECONDS", defaults.CLOCK_LOCK_TTL_SECONDS, 1)
    if ttl < 3 * tick:
        raise ConfigurationError(
            "INGEST_CLOCK_LOCK_TTL_SECONDS", "must be at least 3 x INGEST_CLOCK_TICK_SECONDS"
        )
    overlap = _float(env, "INGEST_RECONCILE_OVERLAP_SECONDS", defaults.RECONCILE_OVERLAP_SECONDS, 0)
    if overlap > defaults.CALL_RECORDS_RETENTION_DAYS * 86400:
        raise ConfigurationError(
            "INGEST_RECONCILE_OVERLAP_SECONDS", "must not exceed 30 days (callRecords' retention)"
        )
    return {
        "clock_tick_seconds": tick,
        "clock_lock_ttl_seconds": ttl,
        "renew_interval_seconds": _float(
            env, "INGEST_RENEW_INTERVAL_SECONDS", defaults.RENEW_INTERVAL_SECONDS, 1
        ),
        "reconcile_interval_seconds": _float(
            env, "INGEST_RECONCILE_INTERVAL_SECONDS", defaults.RECONCILE_INTERVAL_SECONDS, 1
        ),
        "reconcile_overlap_seconds": overlap,
    }


@dataclass(frozen=True)
class Settings:
    """Everything configurable, validated; secrets are hidden from repr."""

    redis_url: str = defaults.REDIS_URL
    public_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    ops_token: str | None = field(default=None, repr=False)

    graph_tenant_id: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: str | None = field(default=None, repr=False)
    graph_client_certificate_path: Path | None = None
    graph_base_url: str = defaults.GRAPH_BASE_URL
    graph_authority: str = defaults.GRAPH_AUTHORITY
    graph_encryption_cert_path: Path | None = None
    graph_encryption_key_path: Path | None = None
    graph_allowed_tenants: tuple[str, ...] = ()

    sf_instance_url: str | None = None
    sf_client_id: str | None = None
    sf_client_secret: str | None = field(default=None, repr=False)
    sf_username: str | None = None
    sf_private_key_path: Path | None = None
    sf_api_version: str = defaults.SF_API_VERSION

    ca_bundle: Path | None = None
    policy_file: Path | None = None
    internal_domains: tuple[str, ...] = ()

    port: int = defaults.PORT
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    dedupe_ttl_seconds: int = defaults.DEDUPE_TTL_SECONDS
    queue: str = defaults.QUEUE
    worker_heartbeat_ttl: int = defaults.WORKER_HEARTBEAT_TTL_SECONDS

    transcript_window_seconds: float = defaults.TRANSCRIPT_WINDOW_SECONDS
    transcript_first_interval_seconds: float = defaults.TRANSCRIPT_FIRST_INTERVAL_SECONDS
    tenant_wide_transcripts: bool = False
    graph_timeout_seconds: float = defaults.GRAPH_TIMEOUT_SECONDS

    clock_tick_seconds: float = defaults.CLOCK_TICK_SECONDS
    clock_lock_ttl_seconds: float = defaults.CLOCK_LOCK_TTL_SECONDS
    renew_interval_seconds: float = defaults.RENEW_INTERVAL_SECONDS
    reconcile_interval_seconds: float = defaults.RECONCILE_INTERVAL_SECONDS
    reconcile_overlap_seconds: float = defaults.RECONCILE_OVERLAP_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment; a bad value raises ConfigurationError."""
        env = os.environ if environ is None else environ
        redis_url = _url(env, "REDIS_URL", defaults.REDIS_URL, {"redis", "rediss", "unix"})
        graph_base = _url(env, "GRAPH_BASE_URL", defaults.GRAPH_BASE_URL, {"https", "http"})
        authority = _url(env, "GRAPH_AUTHORITY", defaults.GRAPH_AUTHORITY, {"https"})
        tenant, allowed = _tenants(env)
        files = _files(env)
        api_version = checks.sf_api_version(_str(env, "SF_API_VERSION") or defaults.SF_API_VERSION)
        queue = _str(env, "INGEST_QUEUE") or defaults.QUEUE
        if not queue.replace("-", "").replace("_", "").isalnum():
            raise ConfigurationError("INGEST_QUEUE", "letters, digits, '-' and '_' only")
        return cls(
            redis_url=checks.redis_url(redis_url or defaults.REDIS_URL),
            port=checks.port("PORT", env.get("PORT", "").strip() or str(defaults.PORT)),
            public_url=_url(env, "INGEST_PUBLIC_URL", None, {"https", "http"}),
            secret_key=_secret(env, "INGEST_SECRET_KEY", MIN_SECRET_KEY),
            ops_token=_secret(env, "INGEST_OPS_TOKEN", MIN_OPS_TOKEN),
            graph_tenant_id=tenant,
            graph_client_id=_str(env, "GRAPH_CLIENT_ID"),
            graph_client_secret=_str(env, "GRAPH_CLIENT_SECRET"),
            graph_base_url=graph_base or defaults.GRAPH_BASE_URL,
            graph_authority=authority or defaults.GRAPH_AUTHORITY,
            graph_allowed_tenants=allowed,
            sf_instance_url=_url(env, "SF_INSTANCE_URL", None, {"https"}),
            sf_client_id=_str(env, "SF_CLIENT_ID"),
            sf_client_secret=_str(env, "SF_CLIENT_SECRET"),
            sf_username=_str(env, "SF_USERNAME"),
            sf_api_version=api_version,
            graph_client_certificate_path=files["graph_client_certificate_path"],
            graph_encryption_cert_path=files["graph_encryption_cert_path"],
            graph_encryption_key_path=files["graph_encryption_key_path"],
            sf_private_key_path=files["sf_private_key_path"],
            ca_bundle=files["ca_bundle"],
            policy_file=files["policy_file"],
            internal_domains=tuple(d.lower() for d in _csv(env, "INTERNAL_DOMAINS")),
            max_body_bytes=_int(
                env, "INGEST_MAX_BODY_BYTES", defaults.MAX_BODY_BYTES, 1024, 64 * 1024 * 1024
            ),
            dedupe_ttl_seconds=_int(
                env, "INGEST_DEDUPE_TTL_SECONDS", defaults.DEDUPE_TTL_SECONDS, 60, int(_MONTH)
            ),
            queue=queue,
            worker_heartbeat_ttl=_int(
                env, "INGEST_WORKER_HEARTBEAT_TTL", defaults.WORKER_HEARTBEAT_TTL_SECONDS, 3, 3600
            ),
            transcript_window_seconds=_float(
                env, "INGEST_TRANSCRIPT_WINDOW_SECONDS", defaults.TRANSCRIPT_WINDOW_SECONDS, 0
            ),
            transcript_first_interval_seconds=_float(
                env,
                "INGEST_TRANSCRIPT_FIRST_INTERVAL_SECONDS",
                defaults.TRANSCRIPT_FIRST_INTERVAL_SECONDS,
                0.1,
            ),
            tenant_wide_transcripts=_bool(env, "INGEST_TENANT_WIDE_TRANSCRIPTS", False),
            graph_timeout_seconds=_float(
                env, "INGEST_GRAPH_TIMEOUT_SECONDS", defaults.GRAPH_TIMEOUT_SECONDS, 1, 600
            ),
            **_clock_settings(env),
        )

    def require_graph(self) -> None:
        """Stop with a clear message unless the Entra app is configured."""
        for name, value in (
            ("GRAPH_TENANT_ID", self.graph_tenant_id),
            ("GRAPH_CLIENT_ID", self.graph_client_id),
        ):
            if not value:
                raise ConfigurationError(name, "required to talk to Microsoft Graph")
        if not self.graph_client_secret and not self.graph_client_certificate_path:
            raise ConfigurationError(
                "GRAPH_CLIENT_SECRET",
                "set it or GRAPH_CLIENT_CERTIFICATE_PATH to talk to Microsoft Graph",
            )

    def require_public_url(self) -> str:
        """The https base Graph posts to; required to create subscriptions."""
        if not self.public_url:
            raise ConfigurationError("INGEST_PUBLIC_URL", "required to create subscriptions")
        return self.public_url

    def require_secret_key(self) -> str:
        """The key that encrypts stored tokens; required for the connect flow."""
        if not self.secret_key or len(self.secret_key) < MIN_SECRET_KEY:
            raise ConfigurationError(
                "INGEST_SECRET_KEY", "required for the connect flow (at least 16 characters)"
            )
        return self.secret_key

    def require_salesforce(self) -> None:
        """Stop with a clear message unless Salesforce access is configured."""
        if not self.sf_instance_url:
            raise ConfigurationError("SF_INSTANCE_URL", "required to write to Salesforce")
        if not self.sf_client_id:
            raise ConfigurationError("SF_CLIENT_ID", "required to write to Salesforce")
        if not self.sf_client_secret and not (self.sf_username and self.sf_private_key_path):
            raise ConfigurationError(
                "SF_CLIENT_SECRET",
                "set it, or SF_USERNAME with SF_PRIVATE_KEY_PATH (JWT bearer)",
            )

    def public(self) -> dict[str, object]:
        """The settings as plain data with every secret masked, for `--json` and logs."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = "***" if value else None
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out
