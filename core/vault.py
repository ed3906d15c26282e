"""Secrets at rest and in transit through the browser: sealed with keys from INGEST_SECRET_KEY.

Each purpose (the users' msal token caches in Redis, the connect flow's state cookie) gets its
own Fernet key (AES-128-CBC + HMAC-SHA256) derived by HKDF, so a value sealed for one purpose
never opens for another. Sealed values are opaque bytes: nothing in Redis is readable JSON.

BadInput
 +-- SealBroken    not sealed with this key (tampered, another key, garbage)
 +-- SealExpired   sealed with this key, but older than the allowed age
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import redis
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core import keys
from core.exceptions import SealBroken, SealExpired

TOKEN_CACHE = b"ingest/token-cache/v1"
CONNECT_STATE = b"ingest/connect-state/v1"
TOKENS_PREFIX = f"{keys.TOKENS}:"


def derive_key(secret_key: str, purpose: bytes) -> bytes:
    """A 32-byte Fernet key for one purpose, from the operator's secret."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw)


class Vault:
    """Seals and opens bytes for one purpose; `clock` is injectable for expiry tests."""

    def __init__(
        self, secret_key: str, purpose: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self._fernet = Fernet(derive_key(secret_key, purpose))
        self._clock = clock

    def seal(self, data: bytes) -> bytes:
        return self._fernet.encrypt_at_time(data, int(self._clock()))

    def open(self, sealed: bytes, max_age: float | None = None) -> bytes:
        """The plain bytes; SealBroken when not genuine, SealExpired when too old."""
        try:
            # Checks the HMAC before anything else is looked at.
            stamped = self._fernet.extract_timestamp(sealed)
            if max_age is not None and self._clock() - stamped > max_age:
                raise SealExpired("sealed value is older than allowed")
            return self._fernet.decrypt(sealed)
        except (InvalidToken, TypeError, ValueError):
            raise SealBroken("sealed value is not genuine") from None


def token_cache_vault(secret_key: str) -> Vault:
    return Vault(secret_key, TOKEN_CACHE)


def save_token_cache(conn: redis.Redis, vault: Vault, user_id: str, serialized: str) -> None:
    """Store a user's msal token cache, sealed, under their directory id."""
    conn.set(TOKENS_PREFIX + user_id.lower(), vault.seal(serialized.encode()))


def load_token_cache(conn: redis.Redis, vault: Vault, user_id: str) -> str | None:
    """A user's msal token cache (msal's serialized JSON), or None when none is stored."""
    sealed: bytes | None = conn.get(TOKENS_PREFIX + user_id.lower())  # type: ignore[assignment]
    return None if sealed is None else vault.open(sealed).decode()


def delete_token_cache(conn: redis.Redis, user_id: str) -> bool:
    """Forget a user's tokens; True when some were stored."""
    return bool(conn.delete(TOKENS_PREFIX + user_id.lower()))
