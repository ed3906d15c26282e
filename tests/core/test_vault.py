"""Sealed storage (core/vault.py): values round-trip under one key and purpose only."""

from __future__ import annotations

import json

import pytest
import redis

from core import vault
from core.exceptions import SealBroken, SealExpired

KEY = "a-test-secret-key-of-some-length"


class TestVault:
    """Sealed values round-trip under the same key and purpose, and fail under any other."""

    def test_round_trip(self) -> None:
        v = vault.Vault(KEY, vault.TOKEN_CACHE)
        assert v.open(v.seal(b'{"RefreshToken": {}}')) == b'{"RefreshToken": {}}'

    def test_sealed_value_is_not_json_and_hides_the_plain_text(self) -> None:
        sealed = vault.Vault(KEY, vault.TOKEN_CACHE).seal(b'{"secret": "refresh-me"}')
        with pytest.raises(ValueError):
            json.loads(sealed)
        assert b"refresh-me" not in sealed

    @pytest.mark.parametrize(
        "other",
        [vault.Vault("another-secret-key-1234", vault.TOKEN_CACHE), vault.Vault(KEY, b"other")],
    )
    def test_other_key_or_purpose_fails(self, other: vault.Vault) -> None:
        sealed = vault.Vault(KEY, vault.TOKEN_CACHE).seal(b"data")
        with pytest.raises(SealBroken):
            other.open(sealed)

    @pytest.mark.parametrize("garbage", [b"", b"not sealed", b"gAAAAA" + b"x" * 80])
    def test_garbage_fails(self, garbage: bytes) -> None:
        with pytest.raises(SealBroken):
            vault.Vault(KEY, vault.TOKEN_CACHE).open(garbage)

    def test_tampered_fails(self) -> None:
        v = vault.Vault(KEY, vault.TOKEN_CACHE)
        sealed = bytearray(v.seal(b"data"))
        sealed[40] = ord("A") if sealed[40] != ord("A") else ord("B")
        with pytest.raises(SealBroken):
            v.open(bytes(sealed))

    def test_expiry(self) -> None:
        now = [1_800_000_000.0]
        v = vault.Vault(KEY, vault.CONNECT_STATE, clock=lambda: now[0])
        sealed = v.seal(b"flow")
        now[0] += 599
        assert v.open(sealed, max_age=600) == b"flow"
        now[0] += 2
        with pytest.raises(SealExpired):
            v.open(sealed, max_age=600)

    def test_token_cache_in_redis(self, redis_conn: redis.Redis) -> None:
        v = vault.token_cache_vault(KEY)
        vault.save_token_cache(redis_conn, v, "ABC-1", '{"AccessToken": {}}')
        raw = redis_conn.get("ingest:tokens:abc-1")
        assert isinstance(raw, bytes) and not raw.startswith(b"{")
        assert vault.load_token_cache(redis_conn, v, "abc-1") == '{"AccessToken": {}}'
        assert vault.delete_token_cache(redis_conn, "abc-1") is True
        assert vault.load_token_cache(redis_conn, v, "abc-1") is None
