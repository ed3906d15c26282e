"""Query answers in batches: `nextRecordsUrl` locators, child rows counted in the batch size.

Salesforce's batch size (2,000 by default, at most 2,000) counts records, and "Child objects
count toward the number of records for the batch size. For example, in relationship
queries, multiple child objects are returned per parent row returned." (REST API Developer
Guide, Query Options Header). So a batch holds parent rows while they and their child rows
fit; a first row whose children alone overflow the batch has its child list cut, with
`done: false` and its own `nextRecordsUrl`, which the client follows as for any query.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from emulators.salesforce.errors import SfError

DEFAULT_BATCH = 2000


def _cost(row: Any) -> int:
    """The row itself plus the child rows it carries."""
    if not isinstance(row, dict):
        return 1
    return 1 + sum(
        len(v["records"]) for v in row.values() if isinstance(v, dict) and "records" in v
    )


class Cursors:
    """Open query results by locator, and the batches cut from them."""

    def __init__(self, batch: int = DEFAULT_BATCH) -> None:
        self.batch = batch
        self._open: dict[str, tuple[int, list[Any]]] = {}
        self._ids = itertools.count(1)

    def first(self, version: str, head: str, total: int, records: list[Any]) -> dict[str, Any]:
        """The first batch of a query result (`head` is `query` or `queryAll`)."""
        return self._batch(version, head, self._register(total, records), 0)

    def more(self, version: str, head: str, locator: str, start: str) -> dict[str, Any]:
        """A later batch, asked for by `query/{locator}-{offset}`."""
        if locator not in self._open or not start.isdigit():
            raise SfError("INVALID_QUERY_LOCATOR", "invalid query locator", status=400)
        return self._batch(version, head, locator, int(start))

    def _register(self, total: int, records: list[Any]) -> str:
        locator = f"01g5g{next(self._ids):010d}"
        self._open[locator] = (total, records)
        return locator

    def _batch(self, version: str, head: str, locator: str, offset: int) -> dict[str, Any]:
        total, records = self._open[locator]
        page: list[Any] = []
        used = 0
        end = offset
        while end < len(records):
            cost = _cost(records[end])
            if page and used + cost > self.batch:
                break
            row = records[end]
            if not page and cost > self.batch:
                row = self._cut(version, head, row)
                cost = _cost(row)
            page.append(row)
            used += cost
            end += 1
        body: dict[str, Any] = {"totalSize": total, "done": True, "records": page}
        if end < len(records):
            body["done"] = False
            body["nextRecordsUrl"] = f"/services/data/v{version}/{head}/{locator}-{end}"
        else:
            self._open.pop(locator, None)
        return body

    def _cut(self, version: str, head: str, row: dict[str, Any]) -> dict[str, Any]:
        """`row` with its child lists cut to what fits the batch; the rest behind locators."""
        row = copy.copy(row)
        room = max(self.batch - 1, 1)  # at least one child row, or paging never ends
        for name, value in list(row.items()):
            if not (isinstance(value, dict) and "records" in value):
                continue
            children = value["records"]
            if len(children) <= room:
                room -= len(children)
                continue
            rest = self._register(len(children), children)
            row[name] = {
                "totalSize": value.get("totalSize", len(children)),
                "done": False,
                "records": children[:room],
                "nextRecordsUrl": f"/services/data/v{version}/{head}/{rest}-{room}",
            }
            room = 0
        return row
