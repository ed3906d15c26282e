"""SQLite persistence of the emulated org's records, with savepoints for all-or-none work."""

from __future__ import annotations

import json
import re
import sqlite3
from itertools import count
from typing import Any

Record = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, object TEXT NOT NULL, seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_object ON records (object, deleted, seq);
CREATE INDEX IF NOT EXISTS records_seq ON records (seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Store:
    """Records as JSON rows keyed by id; `seq` keeps insertion order for queries and dumps."""

    def __init__(self, path: str | None = None) -> None:
        # Autocommit mode: transactions are only the explicit savepoints below.
        self.db = sqlite3.connect(path or ":memory:", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.db.create_function("fold", 1, _fold, deterministic=True)
        self._savepoints = count(1)

    def close(self) -> None:
        self.db.close()

    def is_empty(self) -> bool:
        return self.db.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None

    def next_number(self) -> int:
        """A counter that survives restarts, for new record ids."""
        row = self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('ids', 1) ON CONFLICT (key)"
            " DO UPDATE SET value = value + 1 RETURNING value"
        ).fetchone()
        return int(row[0])

    def insert(self, obj: str, record: Record) -> None:
        seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM records").fetchone()[0]
        self.db.execute(
            "INSERT INTO records (id, object, seq, data) VALUES (?, ?, ?, ?)",
            (record["Id"], obj, seq, json.dumps(record)),
        )

    def replace(self, record: Record, deleted: bool = False) -> None:
        self.db.execute(
            "UPDATE records SET data = ?, deleted = ? WHERE id = ?",
            (json.dumps(record), int(deleted), record["Id"]),
        )

    def get(self, record_id: str, include_deleted: bool = False) -> tuple[str, Record] | None:
        """(object name, record) for an id, or None."""
        row = self.db.execute(
            "SELECT object, data, deleted FROM records WHERE id = ?", (record_id,)
        ).fetchone()
        if row is None or (row[2] and not include_deleted):
            return None
        return str(row[0]), json.loads(row[1])

    def all(self, obj: str, include_deleted: bool = False) -> list[Record]:
        sql = "SELECT data FROM records WHERE object = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        return [json.loads(r[0]) for r in self.db.execute(sql + " ORDER BY seq", (obj,))]

    @staticmethod
    def _expr(field: str, fold: bool) -> str:
        if not re.fullmatch(r"\w+", field):
            raise ValueError(f"not a field name: {field!r}")
        expr = f"json_extract(data, '$.\"{field}\"')"
        return f"fold({expr})" if fold else expr

    def index(self, obj: str, field: str, fold: bool) -> None:
        """An expression index that makes `find` on this field a lookup, not a scan."""
        name = f"ix_{obj}_{field}_{int(fold)}"
        self.db.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON records (object, {self._expr(field, fold)})"
        )

    def find(self, obj: str, field: str, value: str, fold: bool) -> list[Record]:
        """Live records whose text `field` equals `value` (case-folded when `fold`)."""
        expr = self._expr(field, fold)
        want = "fold(?)" if fold else "?"
        # No ORDER BY: it would steer SQLite to the (object, deleted, seq) index, a scan.
        rows = self.db.execute(
            f"SELECT seq, data FROM records WHERE object = ? AND {expr} = {want}"  # noqa: S608 - field names are checked
            " AND deleted = 0",
            (obj, value),
        ).fetchall()
        return [json.loads(data) for _, data in sorted(rows)]

    def dump(self) -> dict[str, list[Record]]:
        """Every live record of every object that has records, in insertion order."""
        out: dict[str, list[Record]] = {}
        rows = self.db.execute("SELECT object, data FROM records WHERE deleted = 0 ORDER BY seq")
        for obj, data in rows:
            out.setdefault(obj, []).append(json.loads(data))
        return {obj: out[obj] for obj in sorted(out)}

    def savepoint(self) -> str:
        name = f"sp{next(self._savepoints)}"
        self.db.execute(f"SAVEPOINT {name}")
        return name

    def release(self, name: str) -> None:
        self.db.execute(f"RELEASE {name}")

    def rollback(self, name: str) -> None:
        self.db.execute(f"ROLLBACK TO {name}")
        self.db.execute(f"RELEASE {name}")


def _fold(value: str | int | float | None) -> str | int | float | None:
    return value.lower() if isinstance(value, str) else value
