"""The Composite resource: up to 25 subrequests in one API call, one transaction."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from emulators.salesforce import collate, collection
from emulators.salesforce.errors import RequestError, not_found

if TYPE_CHECKING:
    from emulators.salesforce.rest import Api, Reply

MAX_SUBREQUESTS = 25
MAX_QUERIES_AND_COLLECTIONS = 5
_REF = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")
_ROLLED_BACK = (
    "The transaction was rolled back since another operation in the same transaction failed."
)


def route(
    api: Api, method: str, version: str, rest: list[str], query: Mapping[str, str], body: Any
) -> Reply:
    if not rest and method == "POST":
        return composite(api, version, body)
    if rest == ["sobjects"] and method == "DELETE":
        return collection.delete(api, query)
    if rest == ["sobjects"] and method in ("POST", "PATCH"):
        return collection.collection(api, "create" if method == "POST" else "update", body)
    if len(rest) == 3 and rest[0] == "sobjects" and method == "PATCH":
        return collection.collection(api, "upsert", body, rest[1], rest[2])
    raise not_found()


def _reply(status: int, body: Any) -> Reply:
    from emulators.salesforce.rest import Reply

    return Reply(status, body)


# -- composite -----------------------------------------------------------------------------


def composite(api: Api, version: str, body: Any) -> Reply:
    """Up to 25 subrequests with @{ref.path} references, collation and allOrNone rollback."""
    subs = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subs, list) or not subs:
        raise RequestError("JSON_PARSER_ERROR", "compositeRequest must be a non-empty array")
    _check(subs)
    all_or_none = bool(body.get("allOrNone", False))
    store = api.org.store
    outer = store.savepoint()
    done: dict[str, Any] = {}
    out: dict[int, dict[str, Any]] = {}
    failed: set[int] = set()
    for index in collate.order(subs, collate.enabled(body.get("collateSubrequests"), version)):
        sub = subs[index]
        ref = sub["referenceId"]
        if failed and all_or_none:
            out[index] = _halted(ref, _ROLLED_BACK)
            continue
        try:
            url = _substitute(sub["url"], done, in_url=True)
            payload = _substitute(sub.get("body"), done)
        except KeyError as exc:
            message = f"Invalid reference specified. No value for {exc.args[0]} found in {ref}."
            out[index] = _halted(ref, message)
            failed.add(index)
            continue
        parts = urlsplit(url)
        if not parts.path.startswith("/services/data/"):
            out[index] = _halted(ref, f"The URL {url} is not a REST API resource")
            failed.add(index)
            continue
        inner = store.savepoint()
        reply = api.handle(
            str(sub["method"]).upper(),
            parts.path.removeprefix("/services/data/"),
            dict(parse_qsl(parts.query)),
            payload,
            nested=True,
        )
        if reply.status >= 400:
            store.rollback(inner)
            failed.add(index)
        else:
            store.release(inner)
            done[ref] = reply.body
            # An allOrNone composite "also applies to each of the sObject Collections
            # subrequests, overriding the value of allOrNone in the subrequests": one record
            # that failed in a collection (answered 200) rolls the whole request back.
            if all_or_none and collection.failed(reply.body):
                failed.add(index)
        result = reply.body
        if isinstance(result, bytes):
            result = base64.b64encode(result).decode()
        out[index] = {
            "body": result,
            "httpHeaders": reply.headers,
            "httpStatusCode": reply.status,
            "referenceId": ref,
        }
    if failed and all_or_none:
        store.rollback(outer)
        for index, answer in out.items():
            if index not in failed:
                out[index] = _halted(answer["referenceId"], _ROLLED_BACK)
    else:
        store.release(outer)
    return _reply(200, {"compositeResponse": [out[i] for i in range(len(subs))]})


def _check(subs: list[Any]) -> None:
    """The whole request is refused (400) when a subrequest is malformed or there are too many."""
    if len(subs) > MAX_SUBREQUESTS:
        raise RequestError(
            "INVALID_BATCH_REQUEST",
            f"Composite requests cannot have more than {MAX_SUBREQUESTS} subrequests",
        )
    seen: set[str] = set()
    heavy = 0
    for sub in subs:
        ok = (
            isinstance(sub, dict)
            and isinstance(sub.get("url"), str)
            and str(sub.get("method", "")).upper() in ("GET", "POST", "PATCH", "PUT", "DELETE")
            and isinstance(sub.get("referenceId"), str)
            and re.fullmatch(r"[A-Za-z0-9_]+", sub["referenceId"]) is not None
        )
        if not ok or sub["referenceId"] in seen:
            raise RequestError(
                "INVALID_BATCH_REQUEST",
                "Each subrequest needs method, url and a unique alphanumeric referenceId",
            )
        seen.add(sub["referenceId"])
        heavy += bool(re.search(r"/(query|queryAll|composite/sobjects)\b", sub["url"]))
    if heavy > MAX_QUERIES_AND_COLLECTIONS:
        raise RequestError(
            "INVALID_BATCH_REQUEST",
            "A composite request can hold at most "
            f"{MAX_QUERIES_AND_COLLECTIONS} queries and collections",
        )


def _halted(ref: str, message: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": ref,
    }


def _lookup(done: dict[str, Any], ref: str, path: str) -> Any:
    if ref not in done:
        raise KeyError(f"{ref}.{path}")
    value = done[ref]
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        try:
            value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"{ref}.{path}") from None
    return value


def _substitute(value: Any, done: dict[str, Any], in_url: bool = False) -> Any:
    """Replace @{ref.path} in strings (a whole-string reference keeps the value's type)."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole and not in_url:
            return _lookup(done, whole.group(1), whole.group(2))
        return _REF.sub(lambda m: str(_lookup(done, m.group(1), m.group(2))), value)
    if isinstance(value, list):
        return [_substitute(v, done) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, done) for k, v in value.items()}
    return value
