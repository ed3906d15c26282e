"""Scenario documents for the end-to-end tests (DESIGN §7 format)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

TENANT = "aaaaaaaa-1111-2222-3333-444444444444"
ALICE = "11111111-aaaa-4bbb-8ccc-000000000001"
BOB = "11111111-aaaa-4bbb-8ccc-000000000002"
VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:03.000\n<v Alice Adams>Hello Carol.</v>\n"


def meeting(mid: str, organizer: str = "alice@contoso.com", seconds: int = 1800,
            people: list[dict[str, Any]] | None = None, **over: Any) -> dict[str, Any]:  # fmt: skip
    start = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    end = (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc: dict[str, Any] = {
        "id": mid, "subject": f"Meeting {mid}", "organizer": organizer,
        "start": "2026-11-20T15:00:00Z", "end": end,
        "participants": people if people is not None else [
            {"upn": organizer}, {"email": "carol@fabrikam.com", "name": "Carol Diaz"}],
        "transcript": VTT, "transcript_ready_after_s": 0, "recording": True,
    }  # fmt: skip
    doc.update(over)
    return doc


def scenario(*meetings: dict[str, Any], **policy: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "tenant": {"id": TENANT, "domains": ["contoso.com"]},
        "users": [
            {"id": ALICE, "upn": "alice@contoso.com", "name": "Alice Adams", "eci": True},
            {"id": BOB, "upn": "bob@contoso.com", "name": "Bob Brown", "eci": False},
            {"id": "11111111-aaaa-4bbb-8ccc-000000000003", "upn": "dan@contoso.com",
             "name": "Dan Diaz", "eci": False},
        ],
        "meetings": list(meetings),
    }  # fmt: skip
    if policy:
        doc["policy"] = policy
    return doc
