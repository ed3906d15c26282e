"""Seeds an empty org from the scenario's `salesforce` section (object → records of field → value).

Seeding is more lenient than the API, as a data import with "Set Audit Fields" is: a record
may carry its own `Id` and audit dates, and may point at a parent by any field through the
relationship name, e.g. `{"LastName": "Diaz", "Account": {"Name": "Fabrikam"}}`. Objects are
created parents first, whatever their order in the file.
"""

from __future__ import annotations

from typing import Any

from emulators.salesforce.errors import SfError
from emulators.salesforce.records import Org


class SeedError(ValueError):
    """A scenario record the org cannot take; the message names object, index and reason."""


def order(org: Org, names: list[str]) -> list[str]:
    """Object names with every referenced (parent) object before its children."""
    wanted = {n: org.sobject(n).name for n in names}
    canonical = set(wanted.values())
    deps = {
        c: {
            t
            for f in org.sobject(c).fields.values()
            if f.type == "reference"
            for t in f.reference_to
            if t in canonical and t != c
        }
        for c in canonical
    }
    done: list[str] = []
    while len(done) < len(canonical):
        ready = sorted(c for c in canonical - set(done) if deps[c] <= set(done))
        done.extend(ready or sorted(canonical - set(done)))  # a cycle: take the rest as is
    return done


def seed(org: Org, data: dict[str, list[dict[str, Any]]]) -> int:
    """Create every record; returns how many. Raises SeedError on the first bad record."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for name, records in data.items():
        if org.schema.get(name) is None:
            raise SeedError(f"salesforce.{name}: no such object in the emulated org")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise SeedError(f"salesforce.{name}: expected a list of records (objects)")
        by_name.setdefault(org.sobject(name).name, []).extend(records)
    count = 0
    for name in order(org, list(by_name)):
        obj = org.sobject(name)
        for index, record in enumerate(by_name[name]):
            try:
                org.create(obj, record, seeding=True)
            except SfError as exc:
                raise SeedError(f"salesforce.{name}[{index}]: {exc.code}: {exc}") from None
            count += 1
    return count
