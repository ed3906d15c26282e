"""Rich notifications' `encryptedContent`, made exactly as Graph documents it (graph.md §7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def encrypted_content(
    resource: dict[str, Any], certificate: str, certificate_id: str
) -> dict[str, str]:
    """Encrypt `resource` for the subscriber's certificate (base64 DER, public key only).

    A fresh 32-byte AES key per item, wrapped with RSA-OAEP (SHA-1, MGF1-SHA-1); the JSON is
    AES-256-CBC with IV = the key's first 16 bytes and PKCS7 padding; HMAC-SHA256 of the
    ciphertext under the same key.
    """
    cert = x509.load_der_x509_certificate(base64.b64decode(certificate))
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the encryption certificate must hold an RSA key")
    key = os.urandom(32)
    # SHA-1 because Graph's protocol mandates OAEP-SHA1 and a SHA-1 thumbprint.
    sha1 = hashes.SHA1()  # noqa: S303
    wrapped = public_key.encrypt(key, asym.OAEP(mgf=asym.MGF1(sha1), algorithm=sha1, label=None))
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(resource).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    data = encryptor.update(plain) + encryptor.finalize()
    signature = hmac.new(key, data, hashlib.sha256).digest()
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(signature).decode(),
        "dataKey": base64.b64encode(wrapped).decode(),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": cert.fingerprint(sha1).hex().upper(),
    }
