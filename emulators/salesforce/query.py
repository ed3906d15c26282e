"""Runs parsed SOQL against the org and shapes results as the REST `query` resource does."""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from typing import Any

from emulators.salesforce.errors import RequestError, malformed_query
from emulators.salesforce.records import Org
from emulators.salesforce.schema import NUMBER_TYPES, TEXT_TYPES, Field, SObject, normalize_id
from emulators.salesforce.soql import Condition, Literal, Order, Query, parse
from emulators.salesforce.store import Record
from emulators.salesforce.values import parse_date, parse_datetime

_UNFILTERABLE = ("textarea", "base64")
_OPS: dict[str, Any] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class Runner:
    """Evaluates one query for one API version (the version only shapes record URLs)."""

    def __init__(self, org: Org, version: str) -> None:
        self.org = org
        self.version = version
        self._joined: dict[int, set[str]] = {}  # a semi-join's ids, by id() of its Condition

    def run(self, text: str, include_deleted: bool = False) -> dict[str, Any]:
        q = parse(text)
        obj = self.org.schema.get(q.sobject)
        if obj is None:
            raise RequestError("INVALID_TYPE", f"sObject type '{q.sobject}' is not supported.")
        self.check(obj, q)
        children = [(sub, *self.child_relationship(obj, sub.sobject)) for sub in q.children]
        for sub, child, _ in children:
            self.check(child, sub)
        rows = [r for r in self.org.store.all(obj.name, include_deleted)]
        if q.where is not None:
            rows = [r for r in rows if self.matches(obj, r, q.where)]
        if q.count:
            if q.fields or q.order:
                raise malformed_query("COUNT() cannot be combined with fields or ORDER BY")
            return {"totalSize": len(rows), "done": True, "records": []}
        rows = self.pick(obj, rows, q)
        records = []
        for row in rows:
            record = self.shape(obj, row, q)
            for sub, child, link in children:
                found = self.org.find(child, link.name, str(row["Id"]))
                if sub.where is not None:
                    found = [r for r in found if self.matches(child, r, sub.where)]
                found = self.pick(child, found, sub)
                # Salesforce answers null, not an empty list, for a parent without children.
                record[str(link.child_relationship)] = (
                    {
                        "totalSize": len(found),
                        "done": True,
                        "records": [self.shape(child, r, sub) for r in found],
                    }
                    if found
                    else None
                )
            records.append(record)
        return {"totalSize": len(records), "done": True, "records": records}

    def check(self, obj: SObject, q: Query) -> None:
        """The fields, filter and order of `q` exist on `obj` and may be used so."""
        for path in q.fields:
            self.resolve(obj, path)
        if q.where is not None:
            self.validate(obj, q.where)
        for order in q.order:
            if self.resolve(obj, order.path).type in _UNFILTERABLE:
                raise RequestError("INVALID_FIELD", f"field '{order.path}' can not be sorted")

    def pick(self, obj: SObject, rows: list[Record], q: Query) -> list[Record]:
        """`rows` (already filtered) in `q`'s order, from its OFFSET up to its LIMIT."""
        rows = self.sort(obj, rows, q.order)[q.offset :]
        return rows if q.limit is None else rows[: q.limit]

    def child_relationship(self, obj: SObject, name: str) -> tuple[SObject, Field]:
        """The child object and its reference field behind `Account.Contacts`, by name."""
        for child in self.org.schema.objects.values():
            for f in child.fields.values():
                rel = f.child_relationship
                if rel and rel.lower() == name.lower() and obj.name in f.reference_to:
                    return child, f
        raise RequestError(
            "INVALID_TYPE",
            f"Didn't understand relationship '{name}' in FROM part of query call. If you are "
            "attempting to use a custom relationship, be sure to append the '__r' after the "
            "custom relationship name.",
        )

    # -- paths ---------------------------------------------------------------------------

    def resolve(self, obj: SObject, path: str) -> Field:
        """The field at the end of a dotted path (Account.Owner.Email), or INVALID_FIELD."""
        *rels, last = path.split(".")
        if rels and rels[0].lower() == obj.name.lower():
            rels = rels[1:]  # SOQL allows the object's own name as a prefix
        for rel in rels:
            f = obj.relationship(rel)
            if f is None:
                raise RequestError(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{rel}' in "
                    f"field path. No such column on entity '{obj.name}'",
                )
            target = f.reference_to[0]
            if len(f.reference_to) > 1 or target == "*":
                if last not in ("Id", "Name"):
                    raise malformed_query(f"polymorphic field {path} is not supported")
                target = "User" if "User" in f.reference_to else "Account"
            obj = self.org.sobject(target)
        f = obj.get(last)
        if f is None:
            raise RequestError("INVALID_FIELD", f"No such column '{last}' on entity '{obj.name}'.")
        return f

    def value(self, obj: SObject, rec: Record | None, path: str) -> Any:
        *rels, last = path.split(".")
        if rels and rels[0].lower() == obj.name.lower():
            rels = rels[1:]
        for rel in rels:
            if rec is None:
                return None
            f = obj.relationship(rel)
            assert f is not None
            parent = self.org.store.get(str(rec.get(f.name))) if rec.get(f.name) else None
            if parent is None:
                return None
            obj, rec = self.org.sobject(parent[0]), parent[1]
        if rec is None:
            return None
        f = obj.get(last)
        return rec.get(f.name) if f else None

    # -- filtering -----------------------------------------------------------------------

    def validate(self, obj: SObject, cond: Condition) -> None:
        for child in cond.children:
            self.validate(obj, child)
        if not cond.path:
            return
        f = self.resolve(obj, cond.path)
        if cond.subquery is not None:
            self.validate_join(obj, f, cond.subquery)
            return
        if f.type in _UNFILTERABLE:
            raise RequestError(
                "INVALID_FIELD", f"field '{f.name}' can not be filtered in a query call"
            )
        if cond.op == "like" and f.type not in TEXT_TYPES | {"id", "reference"}:
            raise RequestError("INVALID_FIELD", f"invalid operator on {f.type} field: LIKE")
        for lit in cond.values:
            _check_type(f, lit)

    def validate_join(self, obj: SObject, left: Field, sub: Query) -> None:
        """Salesforce's semi-join rules: Id or reference on both sides, another object."""
        inner = self.org.schema.get(sub.sobject)
        if inner is None:
            raise RequestError("INVALID_TYPE", f"sObject type '{sub.sobject}' is not supported.")
        if inner.name == obj.name:
            raise malformed_query(
                "The inner and outer selects should not be on the same object type"
            )
        right = self.resolve(inner, sub.fields[0])
        for f, side in ((left, "left"), (right, "selected")):
            if f.type not in ("id", "reference"):
                raise malformed_query(
                    f"semi join sub-selects need an Id or reference {side} field, not {f.name}"
                )
        if sub.where is not None:
            self.validate(inner, sub.where)

    def joined(self, cond: Condition) -> set[str]:
        """The ids a semi-join's sub-select returns, run once per query."""
        key = id(cond)
        if key not in self._joined:
            sub = cond.subquery
            assert sub is not None
            inner = self.org.sobject(sub.sobject)
            rows = self.org.store.all(inner.name, False)
            self._joined[key] = {
                str(v)
                for r in rows
                if sub.where is None or self.matches(inner, r, sub.where)
                for v in [self.value(inner, r, sub.fields[0])]
                if v
            }
        return self._joined[key]

    def matches(self, obj: SObject, rec: Record, cond: Condition) -> bool:
        if cond.op == "and":
            return all(self.matches(obj, rec, c) for c in cond.children)
        if cond.op == "or":
            return any(self.matches(obj, rec, c) for c in cond.children)
        if cond.op == "not":
            return not self.matches(obj, rec, cond.children[0])
        f = self.resolve(obj, cond.path)
        have = self.value(obj, rec, cond.path)
        if cond.subquery is not None:
            # Like NOT IN with values, an anti-join does not keep empty references.
            if have is None:
                return False
            inside = str(have) in self.joined(cond)
            return inside if cond.op == "in" else not inside
        if cond.op in ("in", "not in"):
            hit = any(_compare(f, have, "=", lit) for lit in cond.values)
            return hit if cond.op == "in" else not hit and have is not None
        if cond.op == "like":
            return (
                have is not None and _like(str(cond.values[0].value)).match(str(have)) is not None
            )
        return _compare(f, have, cond.op, cond.values[0])

    # -- ordering and shaping ------------------------------------------------------------

    def sort(self, obj: SObject, rows: list[Record], orders: list[Order]) -> list[Record]:
        def cmp(a: Record, b: Record) -> int:
            for o in orders:
                f = self.resolve(obj, o.path)
                x, y = self.value(obj, a, o.path), self.value(obj, b, o.path)
                if x is None or y is None:
                    if x is None and y is None:
                        continue
                    return (1 if x is None else -1) * (1 if o.nulls_last else -1)
                x, y = _key(f, x), _key(f, y)
                if x != y:
                    return (-1 if x < y else 1) * (-1 if o.descending else 1)
            return 0

        return sorted(rows, key=functools.cmp_to_key(cmp)) if orders else rows

    def attributes(self, obj: SObject, rec: Record) -> dict[str, str]:
        url = f"/services/data/v{self.version}/sobjects/{obj.name}/{rec['Id']}"
        return {"type": obj.name, "url": url}

    def shape(self, obj: SObject, rec: Record, q: Query) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self.attributes(obj, rec)}
        for path in q.fields:
            self._place(obj, rec, path.split("."), out)
        return out

    def _place(self, obj: SObject, rec: Record, parts: list[str], out: dict[str, Any]) -> None:
        if len(parts) > 1 and parts[0].lower() == obj.name.lower():
            parts = parts[1:]
        if len(parts) == 1:
            f = obj.get(parts[0])
            assert f is not None
            value = rec.get(f.name)
            if f.type == "base64" and value is not None:
                value = self.attributes(obj, rec)["url"] + "/" + f.name
            out[f.name] = value
            return
        rel = obj.relationship(parts[0])
        assert rel is not None and rel.relationship_name is not None
        parent_id = rec.get(rel.name)
        parent = self.org.store.get(str(parent_id)) if parent_id else None
        if parent is None:
            out.setdefault(rel.relationship_name, None)
            return
        parent_obj = self.org.sobject(parent[0])
        nested = out.get(rel.relationship_name) or {
            "attributes": self.attributes(parent_obj, parent[1])
        }
        out[rel.relationship_name] = nested
        self._place(parent_obj, parent[1], parts[1:], nested)


def _check_type(f: Field, lit: Literal) -> None:
    ok = {
        "null": True,
        "string": f.type in TEXT_TYPES | {"id", "reference"},
        "number": f.type in NUMBER_TYPES,
        "boolean": f.type == "boolean",
        "date": f.type == "date",
        "datetime": f.type == "datetime",
        "function": f.type in ("date", "datetime"),
    }[lit.kind]
    if not ok:
        raise RequestError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{f.name}' must be of type {f.type}",
        )


def _key(f: Field, value: Any) -> Any:
    if f.type == "datetime":
        return parse_datetime(str(value))
    return value.lower() if isinstance(value, str) else value


def _day_range(name: str, n: int) -> tuple[dt.date, dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    day = dt.timedelta(days=1)
    return {
        "TODAY": (today, today + day),
        "YESTERDAY": (today - day, today),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_N_DAYS": (today - n * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
        "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
    }[name]


def _compare(f: Field, have: Any, op: str, lit: Literal) -> bool:
    if lit.kind == "null":
        return (have is None) == (op == "=") if op in ("=", "!=") else False
    if have is None:
        return op == "!="
    if lit.kind == "function":
        lo, hi = _day_range(*lit.value)
        start: Any = lo
        end: Any = hi
        value: Any = parse_date(str(have)[:10])
        if f.type == "datetime":
            start = dt.datetime.combine(lo, dt.time(), dt.UTC)
            end = dt.datetime.combine(hi, dt.time(), dt.UTC)
            value = parse_datetime(str(have))
        if value is None:
            return False
        inside = bool(start <= value < end)
        if op in ("=", "!="):
            return inside == (op == "=")
        bound = start if op in ("<", ">=") else end
        return bool(_OPS[{"<": "<", "<=": "<", ">": ">=", ">=": ">="}[op]](value, bound))
    want: Any = lit.value
    if lit.kind == "datetime":
        have, want = parse_datetime(str(have)), parse_datetime(str(want))
    elif f.type in ("id", "reference"):
        want = normalize_id(str(want)) or want
    elif isinstance(have, str) and isinstance(want, str):
        have, want = have.lower(), want.lower()
    if have is None or want is None:
        return False
    return bool(_OPS[op](have, want))


@functools.lru_cache(maxsize=256)
def _like(pattern: str) -> re.Pattern[str]:
    """SOQL LIKE: % any run, _ one character, \\% and \\_ literal, case-insensitive."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)
