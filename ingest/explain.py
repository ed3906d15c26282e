"""`ingest explain MEETING_ID [--json]`: what happened to a meeting and why, from the ledger.

MEETING_ID may be the online meeting id, the callRecord id or the ledger's meeting key.
Never shows transcript text or secrets.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import redis

from core.exceptions import BadInput
from core.settings import Settings
from workers.ledger import Ledger

_PUBLIC = (
    "meeting_key", "online_meeting_id", "call_record_id", "call_record_version", "subject",
    "start", "end", "organizer_id", "organizer_email", "join_web_url", "transcript_ids",
    "decision", "reason", "explanation", "stage", "outcome", "outcome_reason", "attempts",
    "last_error", "last_error_at", "recording_url", "created_at", "decided_at", "outcome_at",
    "updated_at",
)  # fmt: skip


def story(ledger: Ledger, any_id: str) -> dict[str, Any]:
    """The ledger's account of the meeting as one JSON-able document; BadInput when unknown."""
    key = ledger.find(any_id.strip())
    if key is None:
        for kind in ("callRecords", "transcripts"):
            entry = ledger.resource(kind, any_id.strip().lower() if kind == "callRecords"
                                    else any_id.strip())  # fmt: skip
            if entry:
                if entry.get("meeting_key"):
                    key = entry["meeting_key"]
                    break
                return {"meeting_key": None, "resource": {"kind": kind, **entry},
                        "events": []}  # fmt: skip
    if key is None:
        raise BadInput(f"no meeting {any_id} in the ledger")
    state = ledger.meeting(key)
    doc: dict[str, Any] = {name: state.get(name) for name in _PUBLIC}
    doc["meeting_key"] = key
    split = json.loads(state["split"]) if state.get("split") else {}
    doc["participants"] = {k: split.get(k, []) for k in ("internal", "external", "unidentified")}
    doc["salesforce_ids"] = (
        json.loads(state["salesforce_ids"]) if state.get("salesforce_ids") else {}
    )
    doc["transcript_ids"] = json.loads(state.get("transcript_ids") or "[]")
    doc["events"] = ledger.events(key)
    return doc


def render(doc: dict[str, Any]) -> str:
    if doc.get("meeting_key") is None:
        res = doc["resource"]
        error = f"; last error: {res['last_error']}" if res.get("last_error") else ""
        return f"{res['kind']} notification {res.get('resource', '')}: {res.get('status')}{error}"
    lines = [f'Meeting "{doc.get("subject") or "(no subject)"}"  [{doc["meeting_key"]}]']
    if doc.get("online_meeting_id"):
        lines.append(f"  online meeting id: {doc['online_meeting_id']}")
    if doc.get("call_record_id"):
        lines.append(f"  callRecord id:     {doc['call_record_id']}")
    if doc.get("start"):
        lines.append(f"  held {doc['start']} to {doc.get('end') or '?'}, organized by "
                     f"{doc.get('organizer_email') or doc.get('organizer_id') or '?'}")  # fmt: skip
    if doc.get("decision"):
        lines.append(f"  Decision: {doc.get('explanation') or doc['reason']}")
        parts = doc["participants"]
        for kind in ("internal", "external", "unidentified"):
            if parts.get(kind):
                lines.append(f"    {kind}: {', '.join(parts[kind])}")
    else:
        lines.append("  Decision: none yet")
    if doc.get("outcome"):
        why = f" ({doc['outcome_reason']})" if doc.get("outcome_reason") else ""
        lines.append(f"  Outcome: {doc['outcome']}{why} at {doc.get('outcome_at')}")
    else:
        lines.append(f"  Outcome: pending (stage: {doc.get('stage') or 'received'})")
    if doc.get("salesforce_ids"):
        ids = ", ".join(f"{k} {v}" for k, v in doc["salesforce_ids"].items())
        lines.append(f"  Salesforce: {ids}")
    if doc.get("recording_url"):
        lines.append(f"  Recording (left on Teams): {doc['recording_url']}")
    if doc.get("attempts"):
        lines.append(f"  Transcript checks: {doc['attempts']}")
    if doc.get("last_error"):
        lines.append(f"  Last error: {doc['last_error']}")
    lines.append("  Story:")
    for event in doc["events"]:
        extra = {k: v for k, v in event.items() if k not in ("at", "what") and v is not None}
        detail = "  " + "; ".join(f"{k}: {v}" for k, v in extra.items()) if extra else ""
        lines.append(f"    {event['at'][:19].replace('T', ' ')}  {event['what']}{detail}")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    conn = redis.Redis.from_url(settings.redis_url)
    try:
        doc = story(Ledger(conn), args.meeting_id)
    finally:
        conn.close()
    print(json.dumps(doc) if args.json else render(doc))
    return 0
