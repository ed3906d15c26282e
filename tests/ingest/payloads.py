"""Notification payloads shaped like Graph's documentation (reference/graph.md §4-§6)."""

from __future__ import annotations

import copy
from typing import Any

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
CR_SUB = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
TR_SUB = "0cc28c98-1111-4d40-900c-6265431fd81f"
USER_TR_SUB = "5a1b2c3d-4e5f-4a6b-8c9d-0e1f2a3b4c5d"
CR_STATE = "secret-callrecords-state"
TR_STATE = "secret-transcripts-state"
CALL_RECORD_ID = "e523d2ed-2966-4b6b-925b-754a88034cc5"
MEETING_ID = (
    "MSo5NzZmNGIzMS0wMDAwKjAqKjE5Om1lZXRpbmdfTkRKak9USXdaVEF0WkRBNU1pMDBOemd5QHRocmVhZC52Mg=="
)
TRANSCRIPT_ID = "MSMjMCMjOGIzMjM0ZmYtZWMx"
ORGANIZER_ID = "976f4b31-fd01-4e0b-9178-29cc40c14438"


def call_record(
    change: str = "created", cr_id: str = CALL_RECORD_ID, **over: Any
) -> dict[str, Any]:
    item = {
        "subscriptionId": CR_SUB,
        "clientState": CR_STATE,
        "changeType": change,
        "resource": f"communications/callRecords/{cr_id}",
        "subscriptionExpirationDateTime": "2026-12-03T00:00:00+00:00",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.callRecord",
            "@odata.id": f"communications/callRecords/{cr_id}",
            "id": cr_id,
        },
        "tenantId": TENANT,
    }
    item.update(over)
    return item


def transcript(**over: Any) -> dict[str, Any]:
    res = f"communications/onlineMeetings('{MEETING_ID}')/transcripts('{TRANSCRIPT_ID}')"
    item = {
        "subscriptionId": TR_SUB,
        "changeType": "created",
        "tenantId": TENANT,
        "clientState": TR_STATE,
        "subscriptionExpirationDateTime": "2026-11-29T08:29:11.3173971+00:00",
        "resource": res,
        "resourceData": {
            "id": TRANSCRIPT_ID,
            "@odata.type": "#Microsoft.Graph.callTranscript",
            "@odata.id": res,
        },
    }
    item.update(over)
    return item


def rich_transcript_capitalised() -> dict[str, Any]:
    """The Teams sample's spelling: `EncryptedContent` and odd `@odata.type` casing."""
    item = transcript()
    item["resourceData"]["@odata.type"] = "#microsoft.graph.calltranscript"
    item["EncryptedContent"] = {
        "data": "ZGF0YQ==",
        "dataSignature": "c2ln",
        "dataKey": "a2V5",
        "encryptionCertificateId": "cert-1",
        "encryptionCertificateThumbprint": "ABCDEF",
    }
    return item


def lifecycle(event: str = "reauthorizationRequired", sub: str = CR_SUB) -> dict[str, Any]:
    return {
        "subscriptionId": sub,
        "subscriptionExpirationDateTime": "2026-12-03T00:00:00+00:00",
        "tenantId": TENANT,
        "clientState": CR_STATE if sub == CR_SUB else TR_STATE,
        "lifecycleEvent": event,
    }


def body(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"value": [copy.deepcopy(i) for i in items], **extra}
