"""Validation of change and lifecycle notification items, before anything is stored.

Every field that a worker later puts into a Graph URL is matched against a strict pattern
here, so that nothing in a notification can add path segments or query parameters to it.
Field names and `@odata.type` values are compared case-insensitively: Graph's own samples
spell `EncryptedContent` and `#Microsoft.Graph.callRecord` in more than one way.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

from core.exceptions import Drop
from workers.registry import CHANGE_TYPES, KIND_CALL_RECORDS, KIND_TRANSCRIPTS, Subscription

_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# Online meeting and transcript ids are base64 (standard or url-safe); bounded in length.
_B64ID = r"[A-Za-z0-9+/=_-]{1,1024}"
_CALL_RECORD = re.compile(
    rf"/?communications/callRecords(?:/(?P<a>{_GUID})|\('(?P<b>{_GUID})'\))", re.IGNORECASE
)
_TRANSCRIPT = re.compile(
    rf"/?(?:communications|users(?:/(?P<u1>{_GUID})|\('(?P<u2>{_GUID})'\)))"
    rf"/onlineMeetings\('(?P<meeting>{_B64ID})'\)/transcripts\('(?P<transcript>{_B64ID})'\)",
    re.IGNORECASE,
)
_SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_TENANT_ID = re.compile(_GUID)
_ODATA_TYPES = {
    KIND_CALL_RECORDS: "#microsoft.graph.callrecord",
    KIND_TRANSCRIPTS: "#microsoft.graph.calltranscript",
}
LIFECYCLE_EVENTS = {
    e.lower(): e for e in ("reauthorizationRequired", "subscriptionRemoved", "missed")
}


def _names(*canonical: str) -> dict[str, str]:
    """Key spelling -> canonical name: each name, and its lower case for other spellings."""
    return {spelling: k for k in canonical for spelling in (k, k.lower())}


_CANONICAL_KEYS = _names(
    "id", "subscriptionId", "subscriptionExpirationDateTime", "changeType", "clientState",
    "tenantId", "resource", "resourceData", "encryptedContent", "lifecycleEvent",
    "organizationId", "sequenceNumber",
)  # fmt: skip
_RESOURCE_DATA_KEYS = _names("@odata.type", "@odata.id", "@odata.etag", "id")
_ENCRYPTED_KEYS = _names("data", "dataSignature", "dataKey", "encryptionCertificateId",
                         "encryptionCertificateThumbprint")  # fmt: skip
MAX_STRING = 4096


@dataclass(frozen=True)
class Item:
    """An accepted item, normalised, without its clientState, ready to become a job."""

    kind: str  # "callRecords", "transcripts" or "lifecycle"
    subscription_id: str
    payload: dict[str, Any]


def _canonical(obj: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Keys renamed to their canonical spelling; unknown keys are kept out."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        # The usual spelling is found as it is; any other is looked up by its lower case.
        name = names.get(key)
        if name is None and isinstance(key, str):
            name = names.get(key.lower())
        if name is not None:
            out[name] = value
    return out


def _text(item: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_STRING:
        raise Drop("malformed_item")
    return value


def canonical_item(raw: object) -> tuple[str, dict[str, Any]]:
    """The item with canonical key names and its subscriptionId, or Drop: the first check,
    before the registry is asked."""
    if not isinstance(raw, dict):
        raise Drop("malformed_item")
    item = _canonical(raw, _CANONICAL_KEYS)
    sub_id = _text(item, "subscriptionId")
    assert sub_id is not None
    if not _SUBSCRIPTION_ID.fullmatch(sub_id):
        raise Drop("malformed_item")
    return sub_id, item


def validate_canonical(
    sub_id: str, item: dict[str, Any], sub: Subscription | None, allowed_tenants: frozenset[str]
) -> Item:
    """Check one item (already passed through `canonical_item`) against its subscription;
    return the normalised item or raise Drop."""
    if sub is None:
        raise Drop("unknown_subscription")
    client_state = item.get("clientState")
    if not isinstance(client_state, str) or not hmac.compare_digest(
        client_state.encode("utf-8", "surrogatepass"), sub.client_state.encode()
    ):
        raise Drop("bad_client_state")
    tenant = _text(item, "tenantId", required=False)
    if tenant is not None and not _TENANT_ID.fullmatch(tenant):
        raise Drop("malformed_item")
    tenant_norm = (tenant or "").lower()
    if allowed_tenants and tenant_norm not in allowed_tenants:
        raise Drop("tenant_not_allowed")
    if sub.tenant_id and tenant_norm != sub.tenant_id.lower():
        raise Drop("tenant_not_allowed")
    out: dict[str, Any] = {"subscriptionId": sub_id, "tenantId": tenant_norm}
    for key in ("id", "subscriptionExpirationDateTime"):
        value = _text(item, key, required=False)
        if value is not None:
            out[key] = value

    has_change, has_life = "changeType" in item, "lifecycleEvent" in item
    if has_change == has_life:
        raise Drop("malformed_item")
    if has_life:
        event = LIFECYCLE_EVENTS.get((_text(item, "lifecycleEvent") or "").lower())
        if event is None:
            raise Drop("bad_lifecycle_event")
        out["lifecycleEvent"] = event
        return Item("lifecycle", sub_id, out)

    change = (_text(item, "changeType") or "").lower()
    if change not in CHANGE_TYPES.get(sub.kind, frozenset()):
        raise Drop("bad_change_type")
    out["changeType"] = change
    out.update(_resource(item, sub.kind))
    # A user's transcript subscription only ever names that user's meetings.
    if (
        sub.kind == KIND_TRANSCRIPTS
        and sub.user_id
        and (out["ids"].get("organizerId") != sub.user_id.lower())
    ):
        raise Drop("resource_not_subscribed")
    encrypted = item.get("encryptedContent")
    if encrypted is not None:
        if not isinstance(encrypted, dict):
            raise Drop("malformed_item")
        enc = _canonical(encrypted, _ENCRYPTED_KEYS)
        if not all(isinstance(enc.get(k), str) for k in ("data", "dataSignature", "dataKey")):
            raise Drop("malformed_item")
        out["encryptedContent"] = enc
    return Item(sub.kind, sub_id, out)


def _resource(item: dict[str, Any], kind: str) -> dict[str, Any]:
    resource = _text(item, "resource")
    assert resource is not None
    ids: dict[str, str]
    if kind == KIND_CALL_RECORDS:
        m = _CALL_RECORD.fullmatch(resource)
        if not m:
            raise Drop("bad_resource")
        ids = {"callRecordId": (m["a"] or m["b"]).lower()}
    elif kind == KIND_TRANSCRIPTS:
        m = _TRANSCRIPT.fullmatch(resource)
        if not m:
            raise Drop("bad_resource")
        ids = {"meetingId": m["meeting"], "transcriptId": m["transcript"]}
        if m["u1"] or m["u2"]:
            ids["organizerId"] = (m["u1"] or m["u2"]).lower()
    else:
        raise Drop("bad_resource")
    data = item.get("resourceData")
    if data is not None:
        if not isinstance(data, dict):
            raise Drop("malformed_item")
        rd = _canonical(data, _RESOURCE_DATA_KEYS)
        odata_type = rd.get("@odata.type")
        if odata_type is not None and (
            not isinstance(odata_type, str) or odata_type.lower() != _ODATA_TYPES[kind]
        ):
            raise Drop("bad_resource")
        rid = rd.get("id")
        expected = ids.get("callRecordId") or ids.get("transcriptId")
        if rid is not None and (not isinstance(rid, str) or rid.lower() != str(expected).lower()):
            raise Drop("bad_resource")
    return {"resource": resource, "ids": ids}
