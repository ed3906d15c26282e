"""The order a composite request's subrequests run in when Salesforce collates them.

From API 49.0 `collateSubrequests` defaults to true: Salesforce "collates unrelated
subrequests to bulkify them", and then "the order of execution is not guaranteed (unless
there is an explicit dependency between the subrequests)". Subrequests can be collated when
they share the HTTP method and API version, their resource is under `/sobjects`, and the
group holds at most five sObject types; subrequests with HTTP headers are not collated.

sObject Collections (`composite/sobjects/...`) are collated with the sObject resources: the
guide promises no order for them either, and the stricter reading surfaces a client that
relies on one. The emulator picks one order a client cannot rely on, deterministically: a
collated group runs where its first member was sent, its sObject types in the reverse of the
order they first appear. A child upserted after its parent, naming the parent only by
external id (an implicit dependency), therefore runs first, as it may in Salesforce. A
subrequest that names another's result (`@{ref...}`) is not collated: it runs where it was
sent, after what it needs.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

FIRST_COLLATING_VERSION = 49.0  # the default is true from 49.0, false in 48.0
MAX_TYPES = 5  # "no more than five sObject resources" in a collated group
_REF = re.compile(r"@\{[A-Za-z0-9_]+\.[^}]+\}")
_PATH = re.compile(r"^/services/data/v(\d{2,3}\.\d)/(composite/)?sobjects/([^/?]*)")


def enabled(flag: Any, version: str) -> bool:
    """Whether to collate: the request's flag, else the default of its API version."""
    if isinstance(flag, bool):
        return flag
    return float(version) >= FIRST_COLLATING_VERSION


def _group(sub: dict[str, Any]) -> tuple[str, str, str] | None:
    """(method, version, sObject type) of a subrequest that can be collated, else None."""
    if sub.get("httpHeaders") or _REF.search(sub["url"] + json.dumps(sub.get("body"))):
        return None
    match = _PATH.match(urlsplit(sub["url"]).path)
    if match is None:
        return None
    version, collection, kind = match.group(1), match.group(2), unquote(match.group(3))
    body = sub.get("body")
    if collection and not kind and isinstance(body, dict):
        # composite/sobjects (create or update of mixed types): named by its first record.
        records = body.get("records")
        first = records[0] if isinstance(records, list) and records else None
        attrs = first.get("attributes") if isinstance(first, dict) else None
        kind = str(attrs.get("type") or "") if isinstance(attrs, dict) else ""
    if not kind:
        return None
    return str(sub["method"]).upper(), version, kind.lower()


def order(subs: list[dict[str, Any]], collate: bool) -> list[int]:
    """Indexes of `subs` in the order they run."""
    if not collate:
        return list(range(len(subs)))
    groups = {i: key for i, sub in enumerate(subs) if (key := _group(sub)) is not None}
    batches: dict[tuple[str, str], list[int]] = {}
    for index, key in groups.items():
        batches.setdefault(key[:2], []).append(index)
    plans: dict[tuple[str, str], list[int]] = {}
    for batch_key, members in batches.items():
        kinds = list(dict.fromkeys(groups[i][2] for i in members))
        if len(kinds) > MAX_TYPES:
            continue  # too many types to collate: each runs where it was sent
        plans[batch_key] = [i for kind in reversed(kinds) for i in members if groups[i][2] == kind]
    out: list[int] = []
    started: set[tuple[str, str]] = set()
    for index in range(len(subs)):
        key = groups.get(index)
        plan_key = key[:2] if key is not None else None
        if plan_key is None or plan_key not in plans:
            out.append(index)
        elif plan_key not in started:
            started.add(plan_key)
            out.extend(plans[plan_key])
    return out
