"""Every setting of DESIGN §3.3 is checked before a process starts: a bad value exits 2 with one
line that names the variable, and no traceback, whichever command is run."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ingest import cli
from tests.certs import new_key, self_signed

GOOD_TENANT = "11111111-1111-1111-1111-111111111111"


def pem_key() -> bytes:
    return new_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_cert() -> bytes:
    return self_signed(new_key()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files that are there but wrong: not PEM, not TOML, a key that is not the cert's."""
    tmp = tmp_path_factory.mktemp("settings")
    made = {
        "garbage": b"-----BEGIN NOTHING-----\nnot base64 at all\n",
        "cert": pem_cert(),
        "key": pem_key(),
        "encrypted": new_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        ),
        "toml": b"[policy\nmin_duration_seconds = = 3\n",
    }
    out = {}
    for name, data in made.items():
        out[name] = tmp / f"{name}.pem"
        out[name].write_bytes(data)
    return out


# (variable, bad value; "{name}" is a file of files()), plus other variables the row needs.
TABLE: list[tuple[str, str, dict[str, str]]] = [
    ("REDIS_URL", "redis://host:notaport/0", {}),
    ("REDIS_URL", "redis://localhost:6379/zero", {}),
    ("REDIS_URL", "http://localhost:6379/0", {}),
    ("REDIS_URL", "unix://", {}),
    ("INGEST_PUBLIC_URL", "http://public.example.com", {}),
    ("INGEST_PUBLIC_URL", "not a url", {}),
    ("INGEST_SECRET_KEY", "short", {}),
    ("GRAPH_TENANT_ID", "not-a-guid", {}),
    ("GRAPH_ALLOWED_TENANTS", f"{GOOD_TENANT},not-a-guid", {}),
    ("GRAPH_CLIENT_CERTIFICATE_PATH", "{garbage}", {}),
    ("GRAPH_CLIENT_CERTIFICATE_PATH", "{cert}", {}),  # a certificate without its key
    ("GRAPH_CLIENT_CERTIFICATE_PATH", "/nonexistent/client.pem", {}),
    ("GRAPH_BASE_URL", "http://graph.example.com/v1.0", {}),
    ("GRAPH_AUTHORITY", "ftp://login.example.com", {}),
    ("GRAPH_ENCRYPTION_CERT_PATH", "{garbage}", {"GRAPH_ENCRYPTION_KEY_PATH": "{key}"}),
    ("GRAPH_ENCRYPTION_KEY_PATH", "{garbage}", {"GRAPH_ENCRYPTION_CERT_PATH": "{cert}"}),
    ("GRAPH_ENCRYPTION_KEY_PATH", "{key}", {"GRAPH_ENCRYPTION_CERT_PATH": "{cert}"}),  # not its key
    ("GRAPH_ENCRYPTION_KEY_PATH", "{encrypted}", {"GRAPH_ENCRYPTION_CERT_PATH": "{cert}"}),
    ("SF_INSTANCE_URL", "http://example.my.salesforce.com", {}),
    ("SF_PRIVATE_KEY_PATH", "{garbage}", {}),
    ("SF_API_VERSION", "nan", {}),
    ("SF_API_VERSION", "inf", {}),
    ("SF_API_VERSION", "40.0", {}),
    ("SF_API_VERSION", "62", {}),
    ("INGEST_CA_BUNDLE", "{garbage}", {}),
    ("POLICY_FILE", "{toml}", {}),
    ("POLICY_FILE", "/nonexistent/policy.toml", {}),
    ("INGEST_OPS_TOKEN", "too-short", {}),
    ("PORT", "eighty", {}),
    ("PORT", "70000", {}),
    ("INGEST_MAX_BODY_BYTES", "1e9", {}),
    ("INGEST_DEDUPE_TTL_SECONDS", "99999999999999999999", {}),
    ("INGEST_TRANSCRIPT_WINDOW_SECONDS", "nan", {}),
    ("INGEST_GRAPH_TIMEOUT_SECONDS", "inf", {}),
    ("INGEST_WORKER_HEARTBEAT_TTL", "1", {}),
    ("INGEST_QUEUE", "a b", {}),
    ("INGEST_TENANT_WIDE_TRANSCRIPTS", "maybe", {}),
]


@pytest.mark.parametrize("command", [["status"], ["serve"], ["worker", "--burst"], ["clock"]])
@pytest.mark.parametrize(("variable", "value", "others"), TABLE)
def test_bad_setting_exits_2_naming_it(
    variable: str,
    value: str,
    others: dict[str, str],
    command: list[str],
    made: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {variable: value, **others}
    for name, raw in env.items():
        monkeypatch.setenv(name, raw.format(**{k: str(v) for k, v in made.items()}))
    assert cli.main(command) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert variable in lines[0]
    assert "Traceback" not in err and out == ""
