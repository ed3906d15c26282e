"""The ECI user registry and `ingest users list|remove`."""

from __future__ import annotations

import json
from typing import Any

import redis

from ingest.cli import main
from workers import users


class TestRegistry:
    """Users are found by id or UPN in any case; identifiers feed the policy lower-cased."""

    def test_add_find_remove(self, redis_conn: redis.Redis) -> None:
        users.add(redis_conn, users.EciUser(id="AAA-1", upn="Alice@Contoso.com", name="Alice"))
        assert users.find(redis_conn, "alice@contoso.com") is not None
        assert users.identifiers(redis_conn) == frozenset({"aaa-1", "alice@contoso.com"})
        gone = users.remove(redis_conn, "ALICE@contoso.com")
        assert gone is not None and gone.name == "Alice"
        assert users.all_users(redis_conn) == []


class TestCommand:
    """`users list --json` prints the registry; removing an unknown user exits 1."""

    def test_list_and_remove(
        self, redis_conn: redis.Redis, redis_url: str, monkeypatch: Any, capsys: Any
    ) -> None:
        monkeypatch.setenv("REDIS_URL", redis_url)
        users.add(redis_conn, users.EciUser(id="id-1", upn="alice@contoso.com"))
        assert main(["users", "list", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert [u["upn"] for u in doc["users"]] == ["alice@contoso.com"]
        assert main(["users", "remove", "bob@contoso.com"]) == 1
        assert main(["users", "remove", "alice@contoso.com", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["removed"]["id"] == "id-1"
        assert main(["users", "add"]) == 1  # no address given
