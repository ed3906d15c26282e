"""A composite answer read: sub-responses by reference, or its root cause logged and raised.

With `allOrNone` one refused record rolls the whole request back and every other subrequest
answers PROCESSING_HALTED (and a collection's other records ALL_OR_NONE_OPERATION_ROLLED_BACK),
so the first failure in the answer is often an echo. The root cause is the record whose error
is not an echo: it is logged with its external key and decides transient or permanent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

from core.exceptions import UpstreamPermanent, UpstreamTransient
from workers.salesforce.client import TRANSIENT_CODES, TRANSIENT_STATUSES, error_code, error_message

# In the write round this means another worker inserted the same key between our two calls:
# a retry upserts onto the row it created.
RACE_CODES = frozenset({"DUPLICATE_VALUE"})
ECHOES = frozenset({"PROCESSING_HALTED", "ALL_OR_NONE_OPERATION_ROLLED_BACK"})

log = structlog.get_logger("workers.salesforce")


@dataclass(frozen=True)
class Failure:
    """One refused subrequest or record: where, which record, and Salesforce's error."""

    ref: str
    status: int
    code: str
    message: str
    key: str | None = None  # the record's external id, when the request named one

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES or self.code in TRANSIENT_CODES | RACE_CODES


def results(
    reply: Any,
    subs: list[dict[str, Any]] | None = None,
    allowed: dict[str, tuple[int, ...]] | None = None,
    meeting_key: str | None = None,
) -> dict[str, tuple[int, Any]]:
    """Sub-responses by referenceId; raises on any failure that is not an allowed status.

    `subs` are the subrequests sent, to name the record that failed by its external id."""
    answers = reply.get("compositeResponse") if isinstance(reply, dict) else None
    if not isinstance(answers, list):
        raise UpstreamPermanent("Salesforce composite answer has no compositeResponse")
    sent = {str(s.get("referenceId")): s for s in subs or []}
    out: dict[str, tuple[int, Any]] = {}
    failures: list[Failure] = []
    for answer in answers:
        ref, body = str(answer.get("referenceId")), answer.get("body")
        status = int(answer.get("httpStatusCode"))
        out[ref] = (status, body)
        sub = sent.get(ref, {})
        if not 200 <= status < 300:
            if status not in (allowed or {}).get(ref, ()):
                key = _url_key(sub)
                failures.append(Failure(ref, status, error_code(body), error_message(body), key))
        elif "/composite/sobjects" in str(sub.get("url", "")):
            # A collection answers 200 whatever happened: every item must say success.
            if not isinstance(body, list):
                failures.append(Failure(ref, status, "", "expected a list of results"))
            else:
                failures += _items(ref, body, sub)
    cause = next((f for f in failures if f.code not in ECHOES), failures[0] if failures else None)
    if cause is not None:
        log.warning(
            "salesforce_refused",
            meeting_key=meeting_key,
            subrequest=cause.ref,
            record_key=cause.key,
            status=cause.status,
            error_code=cause.code,
            error=cause.message,
            failures=len(failures),
        )
        reason = f"Salesforce {cause.ref}: {cause.status} {cause.code} {cause.message}".strip()
        if cause.key:
            reason += f" (record {cause.key})"
        raise UpstreamTransient(reason) if cause.transient else UpstreamPermanent(reason)
    return out


def _items(ref: str, body: list[Any], sub: dict[str, Any]) -> list[Failure]:
    """The records a collection refused, each named by the key field in its URL."""
    sent = sub.get("body")
    records = sent.get("records") if isinstance(sent, dict) else None
    field = urlsplit(str(sub.get("url", ""))).path.rstrip("/").rsplit("/", 1)[-1]
    out = []
    deleting = str(sub.get("method", "")).upper() == "DELETE"
    for index, item in enumerate(body):
        if isinstance(item, dict) and item.get("success"):
            continue
        errors = item.get("errors") if isinstance(item, dict) else None
        if deleting and error_code(errors) == "ENTITY_IS_DELETED":
            continue  # deleted already: what the deletion wanted
        record = records[index] if isinstance(records, list) and index < len(records) else None
        key = record.get(field) if isinstance(record, dict) else None
        code = error_code(errors) or "NO_RESULT"
        out.append(Failure(ref, 200, code, error_message(errors), str(key) if key else None))
    return out


def _url_key(sub: dict[str, Any]) -> str | None:
    """The external id in `…/sobjects/{Object}/{Field}/{value}`, else None."""
    parts = urlsplit(str(sub.get("url", ""))).path.split("/")
    if "sobjects" not in parts or "composite" in parts:
        return None
    tail = parts[parts.index("sobjects") + 1 :]
    return unquote(tail[2]) if len(tail) == 3 else None
