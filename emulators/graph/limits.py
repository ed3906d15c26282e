"""What Graph accepts in a subscription: resources, permissions, lifetimes and field checks."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
import uuid

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from emulators.graph.auth import Caller
from emulators.graph.errors import GraphHTTPError, bad_request

MIN_LIFETIME_S = 45 * 60
LIFECYCLE_REQUIRED_AFTER_S = 3600
CALL_RECORDS = "communications/callRecords"
TENANT_TRANSCRIPTS = "communications/onlineMeetings/getAllTranscripts"
_USER_TRANSCRIPTS = re.compile(r"^users/([^/]+)/onlineMeetings/getAllTranscripts$", re.IGNORECASE)
TRANSCRIPT_ROLE = "OnlineMeetingTranscript.Read.All"
CALL_RECORDS_ROLE = "CallRecords.Read.All"

# (max lifetime in minutes, allowed change types) per kind of resource
LIMITS = {"callRecords": (4230, {"created", "updated"}), "transcripts": (4320, {"created"})}


def is_loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(value: object, name: str) -> str:
    """An https URL (http allowed on loopback, DESIGN §7), else 400."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"{name} is required.", "InvalidRequest")
    url = URL(value)
    secure = url.scheme == "https" or (url.scheme == "http" and is_loopback(url.host))
    if secure and url.host:
        return value
    raise bad_request(
        f"Subscription validation request failed. {name} must be https.", "InvalidRequest"
    )


def validation_token() -> str:
    """An opaque token like Graph's, with characters that must be URL-encoded (' ', '+', '/')."""
    nonce = base64.b64encode(secrets.token_bytes(12) + b"\xfb\xff").decode()
    return (
        "Validation: Testing client application reachability for subscription "
        f"Request-Id: {uuid.uuid4()} Nonce: {nonce}"
    )


def classify(resource: str, who: Caller) -> tuple[str, str | None]:
    """(kind, user id of a per-user subscription) for a resource, checking permissions."""
    path = resource.strip().strip("/")
    if path.lower() == CALL_RECORDS.lower():
        if not who.is_app:
            raise GraphHTTPError(
                403,
                "ExtensionError",
                "Operation not supported with delegated permissions for "
                "communications/callRecords.",
            )
        if CALL_RECORDS_ROLE not in who.roles:
            raise GraphHTTPError(
                403, "ExtensionError", f"Missing application permission {CALL_RECORDS_ROLE}."
            )
        return "callRecords", None
    if path.lower() == TENANT_TRANSCRIPTS.lower():
        if not who.is_app or TRANSCRIPT_ROLE not in who.roles:
            raise GraphHTTPError(
                403,
                "ExtensionError",
                f"Application permission {TRANSCRIPT_ROLE} is required "
                "for tenant-wide transcript subscriptions.",
            )
        return "transcripts", None
    match = _USER_TRANSCRIPTS.match(path)
    if match:
        user_id = match.group(1).strip("'")
        allowed = (who.is_app and TRANSCRIPT_ROLE in who.roles) or (
            who.user_id is not None
            and who.user_id.lower() == user_id.lower()
            and TRANSCRIPT_ROLE in who.scopes
        )
        if not allowed:
            raise GraphHTTPError(
                403, "ExtensionError", f"{TRANSCRIPT_ROLE} for user {user_id} is required."
            )
        return "transcripts", user_id
    raise bad_request(
        f"Resource '{resource}' is not supported for subscriptions.", "InvalidRequest"
    )


def check_certificate(value: object) -> str:
    """A base64 DER X.509 certificate with a 2048 to 4096-bit RSA key."""
    if not isinstance(value, str) or not value:
        raise bad_request("encryptionCertificate is required when includeResourceData is true.")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        raise bad_request(
            "encryptionCertificate is not a valid base64 X.509 certificate."
        ) from None
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or not 2048 <= key.key_size <= 4096:
        raise bad_request("encryptionCertificate must hold an RSA key of 2048 to 4096 bits.")
    return value


def check_change_type(value: object, kind: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("changeType is required.", "InvalidRequest")
    allowed = LIMITS[kind][1]
    for part in value.split(","):
        if part.strip().lower() not in allowed:
            raise bad_request(
                f"changeType '{part.strip()}' is not supported for this resource; "
                f"use {', '.join(sorted(allowed))}.",
                "InvalidRequest",
            )
    return value


def check_client_state(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 128:
        raise bad_request(
            "clientState must be a string of at most 128 characters.", "InvalidRequest"
        )
    return value


def check_cert_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 128:
        raise bad_request(
            "encryptionCertificateId is required (at most 128 characters) when "
            "includeResourceData is true."
        )
    return value
