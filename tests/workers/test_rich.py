"""Rich notification content: decrypted only after its HMAC checks out."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.exceptions import BadInput
from emulators.graph.encryption import encrypted_content
from tests.certs import self_signed
from workers import rich


def make_cert(tmp: Path) -> tuple[Path, Path]:
    """A self-signed RSA certificate and its key, as an operator would make them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(key, "ingest notifications", days=30)
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


DATA = {"id": "t1", "meetingId": "M1",
        "meetingOrganizer": {"user": {"id": "AAAA-1", "tenantId": "t"}}}  # fmt: skip


class TestDecrypt:
    """Graph's algorithm round-trips; a changed byte fails the HMAC before decryption."""

    def test_round_trip_and_hint(self, tmp_path: Path) -> None:
        cert, key = make_cert(tmp_path)
        content = encrypted_content(DATA, rich.certificate_b64(cert), rich.certificate_id(cert))
        assert rich.decrypt(content, key) == DATA
        payload = {"encryptedContent": content}
        assert rich.organizer_hint(payload, key, "M1") == "aaaa-1"
        with pytest.raises(BadInput, match="another meeting"):
            rich.organizer_hint(payload, key, "M2")

    def test_tampered(self, tmp_path: Path) -> None:
        cert, key = make_cert(tmp_path)
        content = encrypted_content(DATA, rich.certificate_b64(cert), "c")
        data = bytearray(base64.b64decode(content["data"]))
        data[0] ^= 1
        content["data"] = base64.b64encode(bytes(data)).decode()
        with pytest.raises(BadInput, match="HMAC"):
            rich.decrypt(content, key)
