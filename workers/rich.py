"""Rich notifications' `encryptedContent`: checked with its HMAC, then decrypted (graph.md §7).

The HMAC-SHA256 over the ciphertext is compared in constant time before anything is
decrypted; a mismatch raises BadInput and the data is not used. The pipeline uses decrypted
data only as a hint (the meeting's organizer when the resource path does not name one) and
only when its meeting id equals the one in the validated resource. The HMAC proves nothing
about the sender (its key comes encrypted with our public certificate): what does is the
request's `validationTokens`, which the receiver checks before it stores an item with
`encryptedContent` (ingest/tokens.py, workers/validation.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from core.exceptions import BadInput, ConfigurationError


def certificate_id(cert_path: Path) -> str:
    """Our id for the encryption certificate: its SHA-1 thumbprint (≤ 128 characters)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return "ingest-" + cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - Graph's thumbprint


def certificate_b64(cert_path: Path) -> str:
    """The certificate as Graph wants it in a subscription: base64 DER, public key only."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _private_key(key_path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError):
        raise ConfigurationError(
            "GRAPH_ENCRYPTION_KEY_PATH", "not a readable PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("GRAPH_ENCRYPTION_KEY_PATH", "must hold an RSA key")
    return key


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise BadInput(f"encryptedContent.{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"encryptedContent.{what} is not base64") from None


def decrypt(encrypted: Mapping[str, Any], key_path: Path) -> dict[str, Any]:
    """The resource JSON inside `encryptedContent`; BadInput if the HMAC does not match."""
    data = _b64(encrypted.get("data"), "data")
    signature = _b64(encrypted.get("dataSignature"), "dataSignature")
    wrapped = _b64(encrypted.get("dataKey"), "dataKey")
    sha1 = hashes.SHA1()  # noqa: S303 - Graph's protocol mandates OAEP with SHA-1
    try:
        key = _private_key(key_path).decrypt(
            wrapped, asym.OAEP(mgf=asym.MGF1(sha1), algorithm=sha1, label=None)
        )
    except ValueError:
        raise BadInput("encryptedContent.dataKey does not open with our key") from None
    expected = hmac.new(key, data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise BadInput("encryptedContent failed its HMAC check")
    if len(key) != 32 or len(data) % 16:
        raise BadInput("encryptedContent has the wrong key or block size")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        doc = json.loads(plain.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadInput("encryptedContent does not hold JSON") from None
    if not isinstance(doc, dict):
        raise BadInput("encryptedContent does not hold a JSON object")
    return doc


def organizer_hint(
    payload: Mapping[str, Any], key_path: Path | None, meeting_id: str
) -> str | None:
    """The organizer's directory id from a rich transcript notification, if it checks out."""
    encrypted = payload.get("encryptedContent")
    if not isinstance(encrypted, Mapping) or key_path is None:
        return None
    doc = decrypt(encrypted, key_path)
    if str(doc.get("meetingId") or "") != meeting_id:
        raise BadInput("encryptedContent names another meeting than the resource")
    organizer = (doc.get("meetingOrganizer") or {}).get("user") or {}
    found = organizer.get("id") if isinstance(organizer, Mapping) else None
    return str(found).lower() if isinstance(found, str) and found else None
