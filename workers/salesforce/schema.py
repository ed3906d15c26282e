"""The start-up check that every object and field the product writes exists and is writable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.exceptions import SchemaMissing, UpstreamPermanent
from workers.salesforce import records
from workers.salesforce.client import SalesforceClient, error_code

# Per object: fields written on insert and on update ("create" only: external keys, which
# an upsert names in its URL, and ContentVersion's file fields, which Salesforce never lets
# one update). The master-detail parents are reparentable, so every upsert may name them.
REQUIRED: dict[str, dict[str, str]] = {
    records.MEETING: {
        records.MEETING_KEY: "create",
        "Name": "upsert",
        "Online_Meeting_Id__c": "upsert",
        "Call_Record_Id__c": "upsert",
        "Start__c": "upsert",
        "End__c": "upsert",
        "Duration_Seconds__c": "upsert",
        "Organizer_Email__c": "upsert",
        "Eligibility_Reason__c": "upsert",
        "Recording_Url__c": "upsert",
        "Related_Account__c": "upsert",
        "Related_Opportunity__c": "upsert",
    },
    records.PARTICIPANT: {
        records.PARTICIPANT_KEY: "create",
        "Meeting__c": "upsert",
        "Name": "upsert",
        "Email__c": "upsert",
        "Role__c": "upsert",
        "Is_External__c": "upsert",
        "Contact__c": "upsert",
        "Lead__c": "upsert",
        "User__c": "upsert",
        "Talk_Time_Seconds__c": "upsert",
    },
    records.TRANSCRIPT: {
        records.TRANSCRIPT_KEY: "create",
        "Meeting__c": "upsert",
        "Name": "upsert",
        "Text__c": "upsert",
        "Language__c": "upsert",
        "Is_Truncated__c": "upsert",
        "Cue_Count__c": "upsert",
    },
    records.FILE: {
        "Title": "create",
        "PathOnClient": "create",
        "VersionData": "create",
        "FirstPublishLocationId": "create",
    },
}
# Per object: fields the look-up round reads (workers.salesforce.matching). Without read
# access Salesforce hides the object (describe answers 404) or the field (left out of it),
# and every look-up would fail; the start-up check names them instead.
READ: dict[str, tuple[str, ...]] = {
    "Contact": ("Email", "AccountId"),
    "Lead": ("Email", "IsConverted"),
    "User": ("Email", "IsActive"),
    "Account": ("Website",),
    "Opportunity": ("AccountId", "IsClosed"),
    "OpportunityContactRole": ("OpportunityId", "ContactId"),
}
# The insights (DESIGN §6): written when the org has them, left out otherwise, so that an
# org deployed before a field was added keeps working until it deploys again.
OPTIONAL: dict[str, tuple[str, ...]] = {
    records.MEETING: (
        "Internal_Talk_Ratio__c",
        "Question_Count__c",
        "Speaker_Count__c",
        "Longest_Monologue_Seconds__c",
        "Longest_Customer_Story_Seconds__c",
        "Interactivity__c",
        "Patience_Seconds__c",
        "Next_Steps__c",
        "Mention_Count__c",
    ),
}
# Objects written when the org has them, whole (creatable and deletable, every field
# creatable): an org deployed before trackers existed gets no mentions, the rest as before.
OPTIONAL_OBJECTS: dict[str, tuple[str, ...]] = {
    records.MENTION: (
        records.MENTION_KEY,
        "Meeting__c",
        "Name",
        "Tracker__c",
        "Phrase__c",
        "Speaker__c",
        "Is_External_Speaker__c",
        "Offset_Seconds__c",
        "Snippet__c",
    ),
}
HINT = (
    "deploy the objects in deploy/salesforce (sf project deploy start --source-dir force-app) "
    "and assign the Teams_Transcript_Integration permission set to the integration user"
)


@dataclass(frozen=True)
class Schema:
    """The optional fields and objects the org lets the product write."""

    optional: dict[str, frozenset[str]]
    objects: frozenset[str] = frozenset()

    def keep(self, obj: str, record: dict[str, object]) -> dict[str, object]:
        """`record` without the optional fields this org lacks."""
        absent = set(OPTIONAL.get(obj, ())) - self.optional.get(obj, frozenset())
        return {k: v for k, v in record.items() if k not in absent}


def problems(describes: dict[str, dict[str, Any] | None]) -> list[str]:
    """What is missing or read-only, as `Object.Field (reason)`; pure, for tests."""
    out: list[str] = []
    for obj, wanted in REQUIRED.items():
        desc = describes.get(obj)
        if desc is None:
            out.append(f"{obj} (object not found)")
            continue
        if not desc.get("createable", False):
            out.append(f"{obj} (object not createable)")
        fields = {str(f.get("name")): f for f in desc.get("fields", []) if isinstance(f, dict)}
        for name, mode in wanted.items():
            f = fields.get(name)
            if f is None:
                out.append(f"{obj}.{name} (field not found)")
            elif not f.get("createable", False):
                out.append(f"{obj}.{name} (not createable)")
            elif mode == "upsert" and not f.get("updateable", False):
                out.append(f"{obj}.{name} (not updateable)")
    for obj, names in READ.items():
        desc = describes.get(obj)
        if desc is None or not desc.get("queryable", False):
            out.append(f"{obj} (not readable)")
            continue
        have = {str(f.get("name")) for f in desc.get("fields", []) if isinstance(f, dict)}
        out.extend(f"{obj}.{name} (not readable)" for name in names if name not in have)
    return out


def writable_optional(describes: dict[str, dict[str, Any] | None]) -> Schema:
    optional: dict[str, frozenset[str]] = {}
    for obj, names in OPTIONAL.items():
        fields = {str(f.get("name")): f for f in (describes.get(obj) or {}).get("fields", [])}
        optional[obj] = frozenset(
            n for n in names if fields.get(n, {}).get("createable") and fields[n].get("updateable")
        )
    objects = frozenset(obj for obj, names in OPTIONAL_OBJECTS.items()
                        if _whole(describes.get(obj), names))  # fmt: skip
    return Schema(optional, objects)


def _whole(desc: dict[str, Any] | None, names: tuple[str, ...]) -> bool:
    """The object exists and may be created and deleted, with every field creatable."""
    if not desc or not all(desc.get(k) for k in ("createable", "deletable")):
        return False
    fields = {str(f.get("name")): f for f in desc.get("fields", []) if isinstance(f, dict)}
    return all(fields.get(n, {}).get("createable") for n in names)


def check(client: SalesforceClient) -> Schema:
    """Describe the objects written and read in one composite call (one API call); raise
    SchemaMissing naming what lacks."""
    describes = describe(client)
    missing = problems(describes)
    if missing:
        raise SchemaMissing(
            "Salesforce lacks what the product writes: " + ", ".join(missing) + f"; {HINT}"
        )
    return writable_optional(describes)


def describe(client: SalesforceClient) -> dict[str, dict[str, Any] | None]:
    """Each object written or read, as `describe` shows it (None: absent or hidden), in one
    composite call."""
    base = f"/services/data/v{client.api_version}/sobjects"
    objects = [*REQUIRED, *OPTIONAL_OBJECTS, *READ]
    subs = [
        {"method": "GET", "url": f"{base}/{obj}/describe", "referenceId": f"d{i}"}
        for i, obj in enumerate(objects)
    ]
    reply = client.restful("composite", "POST", {"allOrNone": False, "compositeRequest": subs})
    describes: dict[str, dict[str, Any] | None] = {}
    for obj, sub in zip(objects, reply.get("compositeResponse", []), strict=False):
        status, body = sub.get("httpStatusCode"), sub.get("body")
        if status == 200 and isinstance(body, dict):
            describes[obj] = body
        elif status == 404 or error_code(body) in ("NOT_FOUND", "INVALID_TYPE"):
            describes[obj] = None
        else:
            raise UpstreamPermanent(f"describe {obj} failed: {status} {error_code(body)}")
    return describes
