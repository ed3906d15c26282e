"""The org's data manipulation: create, update, upsert and delete with Salesforce's validation."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from emulators.salesforce.errors import RequestError, SfError, not_found
from emulators.salesforce.schema import (
    DEFAULTED,
    SYSTEM_FIELDS,
    Schema,
    SObject,
    make_id,
    normalize_id,
)
from emulators.salesforce.store import Record, Store
from emulators.salesforce.values import check, coerce, format_datetime

# The user every API session acts as; it owns what the product creates.
INTEGRATION_USER_ID = make_id("005", 0)
_CLOSED_STAGES = ("closed won", "closed lost")


class Org:
    """Schema plus store: every write goes through here, whichever route it came by."""

    def __init__(
        self, schema: Schema, store: Store, now: Callable[[], dt.datetime] | None = None
    ) -> None:
        self.schema = schema
        self.store = store
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        for obj in schema.objects.values():
            for f in obj.fields.values():
                if f.external_id or f.unique or f.type == "reference":
                    store.index(obj.name, f.name, fold=not f.case_sensitive)

    def sobject(self, name: str) -> SObject:
        obj = self.schema.get(name)
        if obj is None:
            raise SfError("NOT_FOUND", f"The requested resource does not exist: {name}", [], 404)
        return obj

    # -- reading -------------------------------------------------------------------------

    def get(self, obj: SObject, record_id: str) -> Record:
        rid = normalize_id(record_id)
        found = self.store.get(rid) if rid else None
        if found is None or found[0] != obj.name:
            raise not_found()
        return found[1]

    def find(self, obj: SObject, field: str, value: Any) -> list[Record]:
        """Records whose `field` equals `value`, case-insensitively unless the field is not."""
        f = obj.get(field)
        if f is None:
            return []
        if isinstance(value, str):
            return self.store.find(obj.name, f.name, value, fold=not f.case_sensitive)
        return [rec for rec in self.store.all(obj.name) if rec.get(f.name) == value]

    # -- writing -------------------------------------------------------------------------

    def create(self, obj: SObject, body: dict[str, Any], seeding: bool = False) -> Record:
        if not obj.createable and not seeding:
            raise SfError("INVALID_TYPE", f"entity type {obj.name} does not support insert")
        values = self.parse(obj, body, creating=True, seeding=seeding)
        now = format_datetime(self.now())
        rid = values.pop("Id", None) if seeding else None
        if rid is not None:
            rid = normalize_id(str(rid))
            if rid is None or rid[:3] != obj.key_prefix or self.store.get(rid, True):
                raise SfError(
                    "MALFORMED_ID", f"Id {body.get('Id')} is not a free {obj.name} id", ["Id"]
                )
        rec: Record = {"Id": rid or self._new_id(obj)}
        for name, f in obj.fields.items():
            if f.default is not None and f.default != DEFAULTED:
                rec[name] = f.default
        rec.update(
            {
                "IsDeleted": False,
                "CreatedDate": now,
                "LastModifiedDate": now,
                "SystemModstamp": now,
                "CreatedById": INTEGRATION_USER_ID,
                "LastModifiedById": INTEGRATION_USER_ID,
            }
        )
        if "OwnerId" in obj.fields:
            rec["OwnerId"] = INTEGRATION_USER_ID
        rec.update({k: v for k, v in values.items() if v is not None})
        self._finish(obj, rec, None)
        self.store.insert(obj.name, rec)
        if obj.name == "ContentVersion":
            self._publish(rec)
        return rec

    def _new_id(self, obj: SObject) -> str:
        """The next free id of `obj`, stepping over any a seed took for itself."""
        while True:
            rid = make_id(obj.key_prefix, self.store.next_number())
            if self.store.get(rid, include_deleted=True) is None:
                return rid

    def update(
        self, obj: SObject, record_id: str, body: dict[str, Any], upserting: bool = False
    ) -> Record:
        rec = dict(self.get(obj, record_id))
        values = self.parse(obj, body, creating=False, existing=rec if upserting else None)
        values.pop("Id", None)
        for name, value in values.items():
            if value is None:
                rec.pop(name, None)
            else:
                rec[name] = value
        now = format_datetime(self.now())
        rec.update(
            {
                "LastModifiedDate": now,
                "SystemModstamp": now,
                "LastModifiedById": INTEGRATION_USER_ID,
            }
        )
        self._finish(obj, rec, rec["Id"])
        self.store.replace(rec)
        return rec

    def upsert(
        self, obj: SObject, field: str, value: str, body: dict[str, Any]
    ) -> tuple[Record, bool]:
        """(record, created): insert when nothing matches `field` = `value`, else update."""
        f = obj.get(field)
        if f is None or not (f.external_id or f.name == "Id"):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {field}"
            )
        if f.name == "Id":
            return self.update(obj, value, body, upserting=True), False
        matches = self.find(obj, f.name, value)
        if len(matches) > 1:
            raise SfError(
                "DUPLICATE_EXTERNAL_ID",
                f"{f.name}: more than one record found for external id field: "
                f"{[m['Id'] for m in matches]}",
                [f.name],
                300,
            )
        body = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
        if matches:
            return self.update(obj, matches[0]["Id"], body, upserting=True), False
        return self.create(obj, {**body, f.name: value}), True

    def delete(self, obj: SObject, record_id: str) -> None:
        rec = dict(self.get(obj, record_id))
        self._delete(obj, rec)

    def _delete(self, obj: SObject, rec: Record) -> None:
        rec["IsDeleted"] = True
        self.store.replace(rec, deleted=True)
        for child in self.schema.objects.values():
            refs = [f for f in child.fields.values() if f.type == "reference" and f.createable]
            for f in refs:
                for row in self.find(child, f.name, rec["Id"]):
                    if f.cascade_delete:
                        self._delete(child, dict(row))
                    else:
                        row = dict(row)
                        row.pop(f.name, None)
                        self.store.replace(row)

    # -- validation ----------------------------------------------------------------------

    def parse(
        self,
        obj: SObject,
        body: Any,
        creating: bool,
        seeding: bool = False,
        existing: Record | None = None,
    ) -> dict[str, Any]:
        """Body fields by canonical name, coerced; relationship references resolved.

        `existing` is the record an upsert updates: a field that cannot be updated (a
        master-detail parent) may still be sent with the value it already has.
        """
        if not isinstance(body, dict):
            raise RequestError("JSON_PARSER_ERROR", "The request body must be a JSON object")
        attrs = body.get("attributes")
        if isinstance(attrs, dict) and str(attrs.get("type", obj.name)).lower() != obj.name.lower():
            raise RequestError("INVALID_TYPE", f"attributes.type must be {obj.name}")
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key == "attributes":
                continue
            rel = obj.relationship(key)
            if rel is not None and isinstance(value, dict):
                out[rel.name] = self._resolve(rel.reference_to, rel.name, value, seeding)
                continue
            f = obj.get(key)
            if f is None:
                raise RequestError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                )
            out[f.name] = coerce(f, value)
        for name, value in out.items():
            f = obj.fields[name]
            check(f, value)
            if f.type == "reference" and value is not None:
                out[name] = self._reference(f.reference_to, f.name, f.label, value)
        for name, value in out.items():
            f = obj.fields[name]
            allowed = f.createable if creating else f.updateable or name == "Id"
            if seeding:
                allowed = allowed or name == "Id" or name in SYSTEM_FIELDS
            if not allowed and not (existing is not None and existing.get(name) == value):
                raise SfError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [name],
                )
        return out

    def _reference(self, targets: tuple[str, ...], name: str, label: str, value: str) -> str:
        rid = normalize_id(value)
        if rid is None:
            raise SfError("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [name])
        if rid == INTEGRATION_USER_ID and "User" in targets:
            return rid
        target = self.schema.by_id(rid)
        if target is None or ("*" not in targets and target.name not in targets):
            raise SfError(
                "FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}", [name]
            )
        if self.store.get(rid) is None:
            raise SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])
        return rid

    def _resolve(
        self, targets: tuple[str, ...], name: str, ref: dict[str, Any], seeding: bool
    ) -> str:
        """A parent given by external id (`"Meeting__r": {"Meeting_Key__c": "k"}`) → its id."""
        attrs = ref.get("attributes")
        kind = attrs.get("type") if isinstance(attrs, dict) else None
        keys = [k for k in ref if k != "attributes"]
        target = self.schema.get(str(kind or targets[0]))
        if target is None or len(keys) != 1:
            raise RequestError("INVALID_FIELD", f"A reference for {name} needs one key field")
        f = target.get(keys[0])
        if f is None or not (seeding or f.external_id or f.id_lookup):
            raise RequestError(
                "INVALID_FIELD", f"Field {keys[0]} is not an external id on {target.name}"
            )
        matches = self.find(target, f.name, ref[keys[0]])
        if len(matches) != 1:
            what = "not found" if not matches else "matches more than one record"
            raise SfError(
                "INVALID_FIELD",
                f"Foreign key external ID: {ref[keys[0]]} {what} for field {f.name} in entity "
                f"{target.name}",
                [name],
            )
        return str(matches[0]["Id"])

    def _finish(self, obj: SObject, rec: Record, existing_id: str | None) -> None:
        """Derived fields, then the required and unique checks on the whole record."""
        derive(obj.name, rec)
        missing = [
            n
            for n, f in obj.fields.items()
            if not f.nillable and not f.derived and f.type != "id" and rec.get(n) in (None, "")
        ]
        if missing:
            raise SfError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        for name, f in obj.fields.items():
            if f.unique and rec.get(name) is not None:
                clash = [r for r in self.find(obj, name, rec[name]) if r["Id"] != existing_id]
                if clash:
                    raise SfError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {name} duplicates value on record with id: "
                        f"{clash[0]['Id']}",
                        [name],
                    )

    def _publish(self, version: Record) -> None:
        """A new ContentVersion makes its ContentDocument and, with a location, the link."""
        docs = self.sobject("ContentDocument")
        doc = {
            "Id": self._new_id(docs),
            "IsDeleted": False,
            **{k: version[k] for k in SYSTEM_FIELDS},
            "OwnerId": version.get("OwnerId"),
            "Title": version["Title"],
            "FileExtension": version.get("FileExtension"),
            "ContentSize": version.get("ContentSize"),
            "LatestPublishedVersionId": version["Id"],
        }
        self.store.insert(docs.name, doc)
        version["ContentDocumentId"] = doc["Id"]
        self.store.replace(version)
        location = version.get("FirstPublishLocationId")
        if location:
            link = {"ContentDocumentId": doc["Id"], "LinkedEntityId": location, "ShareType": "I"}
            self.create(self.sobject("ContentDocumentLink"), link)


def derive(name: str, rec: Record) -> None:
    """Fields Salesforce computes: full names, closed stages, a text Name defaulting to the Id."""
    if name in ("Contact", "Lead", "User"):
        rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p)
    elif name == "Opportunity":
        stage = str(rec.get("StageName") or "").lower()
        rec["IsClosed"] = stage in _CLOSED_STAGES
        rec["IsWon"] = stage == "closed won"
    elif name == "ContentVersion":
        path = PurePosixPath(str(rec.get("PathOnClient") or ""))
        rec.setdefault("Title", path.stem)
        rec["FileExtension"] = path.suffix.lstrip(".").lower() or None
        data = rec.get("VersionData")
        rec["ContentSize"] = len(base64.b64decode(data)) if isinstance(data, str) else 0
        rec.update(IsLatest=True, VersionNumber="1")
    elif name.endswith("__c") and not rec.get("Name"):
        rec["Name"] = rec["Id"]
