"""Tracker mentions in the write round: their upsert and the deletion of those gone (DESIGN §6).

Mentions travel in the same composite as the meeting (still two API calls a meeting): one
sObject collection upserts up to 200 of them on `Mention_Key__c`, and one collection
deletes, by Id, the mentions an earlier run wrote that this run no longer finds (a tracker
removed or changed). Which mentions were written, and their Ids, the pipeline's ledger
remembers (the look-up round has no room for a sixth query: Salesforce allows five queries
and collections in one composite).

When the ledger does not know (its Redis was lost, or the meeting was written before it
kept them), the look-up round also reads the meeting row by its key (a row read, not a
query): a meeting that already has mentions costs one more call, a query of its mentions,
so that the write still deletes those no longer found. A new meeting costs nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from workers.meeting import ResolvedMeeting
from workers.salesforce import mapping, matching, records
from workers.salesforce.schema import Schema
from workers.trackers import MAX_WRITTEN, Mention

UPSERT_REF = "mentions"
DELETE_REF = "mentionsGone"
BEFORE_REF = "meetingBefore"  # the look-up round's read of the meeting row, when needed
OFFSET_DIGITS = 9  # Offset_Seconds__c: Number(10, 1)


def key(meeting: ResolvedMeeting, mention: Mention) -> str:
    return records.external_key(f"{meeting.meeting_key}/k/{mention.tracker}/{mention.where}")


def rows(meeting: ResolvedMeeting, found: Sequence[Mention]) -> list[dict[str, object]]:
    """Teams_Meeting_Mention__c rows of the first 200 mentions, in spoken order."""
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for mention in found:
        mkey = key(meeting, mention)
        if mkey in seen:
            continue  # a key twice in one collection fails the whole collection
        seen.add(mkey)
        offset = round(mention.offset_s, 1)
        rows.append(
            {
                "attributes": {"type": records.MENTION},
                records.MENTION_KEY: mkey,
                "Name": f"{mention.tracker}: {mention.phrase}"[: mapping.NAME_LIMIT],
                "Tracker__c": mention.tracker[:80],
                "Phrase__c": mention.phrase[:255],
                "Speaker__c": (mention.speaker or "")[:255] or None,
                "Is_External_Speaker__c": mention.is_external,
                "Offset_Seconds__c": offset if abs(offset) < 10**OFFSET_DIGITS else None,
                "Snippet__c": mention.snippet[:255],
                "Meeting__r": {records.MEETING_KEY: records.meeting_external_key(meeting)},
            }
        )
        if len(rows) == MAX_WRITTEN:
            break
    return rows


def subrequests(
    version: str, rows: list[dict[str, object]], written: Mapping[str, str], room: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """The upsert and deletion subrequests that fit `room` collections, and the ids deleted."""
    subs: list[dict[str, Any]] = []
    if room < 1:
        return subs, []
    base = f"/services/data/v{version}/composite/sobjects"
    if rows:
        subs.append(
            {
                "method": "PATCH",
                "url": f"{base}/{records.MENTION}/{records.MENTION_KEY}",
                "referenceId": UPSERT_REF,
                "body": {"allOrNone": True, "records": rows},
            }
        )
    keep = {str(r[records.MENTION_KEY]) for r in rows}
    gone = sorted(rid for mkey, rid in written.items() if mkey not in keep)[:MAX_WRITTEN]
    if gone and len(subs) < room:
        # Not all-or-none: a mention someone already deleted is gone as wanted.
        subs.append(
            {
                "method": "DELETE",
                "url": f"{base}?ids={','.join(gone)}&allOrNone=false",
                "referenceId": DELETE_REF,
            }
        )
        return subs, gone
    return subs, []


def written_now(
    rows: list[dict[str, object]],
    answer: Any,
    written: Mapping[str, str],
    deleted: Sequence[str],
) -> dict[str, str]:
    """Mention key -> Id of what Salesforce now holds from this product: the rows upserted
    (their Ids from the collection's answer) and any older ones not deleted yet."""
    gone = set(deleted)
    now = {k: v for k, v in written.items() if v not in gone}
    if isinstance(answer, list):
        for row, item in zip(rows, answer, strict=False):
            if isinstance(item, dict) and item.get("id"):
                now[str(row[records.MENTION_KEY])] = str(item["id"])
    return now


def readable(schema: Schema) -> bool:
    """Whether the org has the mentions and the meeting's count of them."""
    counted = "Mention_Count__c" in schema.optional.get(records.MEETING, frozenset())
    return records.MENTION in schema.objects and counted


def before_request(meeting: ResolvedMeeting, version: str) -> dict[str, Any]:
    """The look-up subrequest that reads the meeting row (404 when it was never written)."""
    key = quote(records.meeting_external_key(meeting), safe="")
    return {
        "method": "GET",
        "url": f"/services/data/v{version}/sobjects/{records.MEETING}/{records.MEETING_KEY}/"
        f"{key}?fields=Id,Mention_Count__c",
        "referenceId": BEFORE_REF,
    }


def existing_query(meeting_id: str) -> str:
    """The SOQL that lists a meeting's mentions (at most 200 were ever written)."""
    return (
        f"SELECT Id, {records.MENTION_KEY} FROM {records.MENTION} "  # noqa: S608
        f"WHERE Meeting__c = {matching.soql_quote(meeting_id)} LIMIT 2000"
    )


def meeting_with_mentions(answer: tuple[int, Any] | None) -> str | None:
    """The meeting's Id when the row read found it with mentions, else None."""
    if answer is None or answer[0] != 200 or not isinstance(answer[1], dict):
        return None
    count = answer[1].get("Mention_Count__c")
    found = answer[1].get("Id")
    return str(found) if found and isinstance(count, int | float) and count > 0 else None


def by_key(rows: Any) -> dict[str, str]:
    """Mention key -> Id of the rows a query answered."""
    out: dict[str, str] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("Id") and row.get(records.MENTION_KEY):
            out[str(row[records.MENTION_KEY])] = str(row["Id"])
    return out
