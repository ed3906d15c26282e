"""Composite requests and sObject Collections: many operations in one API call."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from emulators.salesforce.errors import RequestError, SfError, not_found

if TYPE_CHECKING:
    from emulators.salesforce.rest import Api, Reply

MAX_SUBREQUESTS = 25
MAX_QUERIES_AND_COLLECTIONS = 5
MAX_RECORDS = 200
_REF = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")
_ROLLED_BACK = (
    "The transaction was rolled back since another operation in the same transaction failed."
)
_ITEM_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}


def route(
    api: Api, method: str, version: str, rest: list[str], query: Mapping[str, str], body: Any
) -> Reply:
    if not rest and method == "POST":
        return composite(api, body)
    if rest == ["sobjects"] and method == "DELETE":
        return delete(api, query)
    if rest == ["sobjects"] and method in ("POST", "PATCH"):
        return collection(api, "create" if method == "POST" else "update", body)
    if len(rest) == 3 and rest[0] == "sobjects" and method == "PATCH":
        return collection(api, "upsert", body, rest[1], rest[2])
    raise not_found()


def _reply(status: int, body: Any) -> Reply:
    from emulators.salesforce.rest import Reply

    return Reply(status, body)


# -- sObject Collections -------------------------------------------------------------------


def collection(api: Api, op: str, body: Any, type_: str = "", ext: str = "") -> Reply:
    """create / update / upsert of up to 200 records, each with its own result, in order."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise RequestError("JSON_PARSER_ERROR", "The body needs a records array")
    records: list[Any] = body["records"]
    if len(records) > MAX_RECORDS:
        raise RequestError(
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
        )
    all_or_none = bool(body.get("allOrNone", False))
    org = api.org
    field = None
    if op == "upsert":
        obj = org.sobject(type_)
        field = obj.get(ext)
        if field is None or not field.external_id:
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {ext}"
            )
    keys = [r.get(field.name) if field and isinstance(r, dict) else None for r in records]
    store = org.store
    outer = store.savepoint()
    results: list[dict[str, Any]] = []
    try:
        for index, rec in enumerate(records):
            inner = store.savepoint()
            try:
                results.append(_one(api, op, rec, type_, field.name if field else "", keys, index))
                store.release(inner)
            except RequestError:
                raise
            except SfError as exc:
                store.rollback(inner)
                failed: dict[str, Any] = {"success": False, "errors": exc.item_errors()}
                if op == "upsert":
                    failed["created"] = False
                results.append(failed)
    except RequestError as exc:
        store.rollback(outer)
        return _reply(exc.status, exc.body())
    if all_or_none and not all(r["success"] for r in results):
        store.rollback(outer)
        results = [
            r if not r["success"] else {"success": False, "errors": [_ITEM_ROLLED_BACK]}
            for r in results
        ]
    else:
        store.release(outer)
    return _reply(200, results)


def delete(api: Api, query: Mapping[str, str]) -> Reply:
    """`DELETE composite/sobjects?ids=a,b[&allOrNone=true]`: up to 200 records, any types."""
    ids = [i for i in query.get("ids", "").split(",") if i]
    if not ids or len(ids) > MAX_RECORDS:
        raise RequestError("INVALID_FIELD", f"ids must list 1 to {MAX_RECORDS} record ids")
    store = api.org.store
    outer = store.savepoint()
    results: list[dict[str, Any]] = []
    for rid in ids:
        obj = api.org.schema.by_id(rid)
        try:
            if obj is None:
                raise SfError("MALFORMED_ID", f"malformed id {rid}", [])
            api.org.delete(obj, rid)
            results.append({"id": rid, "success": True, "errors": []})
        except SfError as exc:
            if exc.code == "NOT_FOUND":
                exc = SfError("ENTITY_IS_DELETED", "entity is deleted", [])
            results.append({"id": rid, "success": False, "errors": exc.item_errors()})
    if query.get("allOrNone") == "true" and not all(r["success"] for r in results):
        store.rollback(outer)
        results = [r if not r["success"] else {**r, "success": False,
                   "errors": [_ITEM_ROLLED_BACK]} for r in results]  # fmt: skip
    else:
        store.release(outer)
    return _reply(200, results)


def _one(
    api: Api, op: str, rec: Any, type_: str, ext: str, keys: list[Any], index: int
) -> dict[str, Any]:
    org = api.org
    if not isinstance(rec, dict):
        raise RequestError("JSON_PARSER_ERROR", "Each record must be a JSON object")
    attrs = rec.get("attributes")
    kind = attrs.get("type") if isinstance(attrs, dict) else None
    if op == "upsert":
        obj = org.sobject(type_)
        if "Id" in rec:
            raise SfError("INVALID_FIELD", "Id is not allowed in an upsert by external id", ["Id"])
        value = keys[index]
        if value is None or value == "":
            raise SfError("MISSING_ARGUMENT", f"{ext} not specified", [ext])
        if keys.count(value) > 1:
            raise SfError("DUPLICATE_VALUE", f"Duplicate external id specified: {value}", [ext])
        saved, created = org.upsert(obj, ext, str(value), rec)
        return {"id": saved["Id"], "success": True, "errors": [], "created": created}
    if not kind:
        raise RequestError("INVALID_TYPE", "Must send a concrete entity type.")
    obj = org.sobject(str(kind))
    if op == "create":
        if "Id" in rec:
            raise SfError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        saved = org.create(obj, rec)
    else:
        if not rec.get("Id"):
            raise SfError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        saved = org.update(obj, str(rec["Id"]), rec)
    return {"id": saved["Id"], "success": True, "errors": []}


# -- composite -----------------------------------------------------------------------------


def composite(api: Api, body: Any) -> Reply:
    """Up to 25 subrequests in order, with @{ref.path} references and allOrNone rollback."""
    subs = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subs, list) or not subs:
        raise RequestError("JSON_PARSER_ERROR", "compositeRequest must be a non-empty array")
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
    all_or_none = bool(body.get("allOrNone", False))
    store = api.org.store
    outer = store.savepoint()
    done: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    failed = False
    for sub in subs:
        ref = sub["referenceId"]
        if failed and all_or_none:
            out.append(_halted(ref, _ROLLED_BACK))
            continue
        try:
            url = _substitute(sub["url"], done, in_url=True)
            payload = _substitute(sub.get("body"), done)
        except KeyError as exc:
            out.append(
                _halted(
                    ref, f"Invalid reference specified. No value for {exc.args[0]} found in {ref}."
                )
            )
            failed = True
            continue
        parts = urlsplit(url)
        if not parts.path.startswith("/services/data/"):
            out.append(_halted(ref, f"The URL {url} is not a REST API resource"))
            failed = True
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
            failed = True
        else:
            store.release(inner)
            done[ref] = reply.body
        result = reply.body
        if isinstance(result, bytes):
            result = base64.b64encode(result).decode()
        out.append(
            {
                "body": result,
                "httpHeaders": reply.headers,
                "httpStatusCode": reply.status,
                "referenceId": ref,
            }
        )
    if failed and all_or_none:
        store.rollback(outer)
        out = [
            r if r["httpStatusCode"] >= 400 else _halted(r["referenceId"], _ROLLED_BACK)
            for r in out
        ]
    else:
        store.release(outer)
    return _reply(200, {"compositeResponse": out})


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
