"""sObject Collections: create, update, upsert and delete of up to 200 records in one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emulators.salesforce.errors import RequestError, SfError, not_found

if TYPE_CHECKING:
    from emulators.salesforce.rest import Api, Reply

MAX_RECORDS = 200
ITEM_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}


def _reply(status: int, body: Any) -> Reply:
    from emulators.salesforce.rest import Reply

    return Reply(status, body)


def failed(body: Any) -> bool:
    """Whether a collection's answer (200 whatever happened) reports a record that failed."""
    return isinstance(body, list) and any(
        isinstance(r, dict) and r.get("success") is False for r in body
    )


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
            r if not r["success"] else {"success": False, "errors": [ITEM_ROLLED_BACK]}
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
                   "errors": [ITEM_ROLLED_BACK]} for r in results]  # fmt: skip
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
    if not kind:
        # "Each object in the request body must contain an attributes map. The map must
        # contain a value for type." (upsert, create and update alike)
        raise RequestError("INVALID_TYPE", "Must send a concrete entity type.")
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
