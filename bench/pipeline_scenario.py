"""The pipeline benchmark's scenario: N eligible meetings on the built-in tenant and CRM seed.

Every meeting is organised by an ECI user, has a 30-minute span, a short transcript that is
ready at once, and two or three external participants: a Contact of the seed, a colleague of
theirs Salesforce does not know, and on every third meeting a Lead. So each meeting takes the
whole path: callRecord, meeting, attendance report, transcript list and content, two
Salesforce calls with matches and a related Account.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from emulators import scenario as scenarios

FIRST_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
LINES = (
    "Thanks for joining, let's go through the proposal.",
    "Sounds good. We read it last week and have a few questions.",
    "The rollout would start with one team and grow from there.",
    "What does the support contract cover in the first year?",
    "Everything on the standard plan, plus a named engineer.",
    "Great, send us the order form and we'll review it.",
)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _transcript(speakers: list[str]) -> str:
    cues = ["WEBVTT", ""]
    for n, line in enumerate(LINES):
        start, end = n * 6, n * 6 + 5
        cues += [f"00:00:{start:02d}.000 --> 00:00:{end:02d}.000",
                 f"<v {speakers[n % len(speakers)]}>{line}</v>", ""]  # fmt: skip
    return "\n".join(cues)


def build(count: int) -> dict[str, Any]:
    """A scenario document (DESIGN §7) with `count` eligible meetings, ids `b-0001`..."""
    doc: dict[str, Any] = json.loads(scenarios.DEFAULT_PATH.read_text(encoding="utf-8"))
    organizers = [u for u in doc["users"] if u.get("eci")]
    contacts = doc["salesforce"]["Contact"]
    leads = doc["salesforce"]["Lead"]
    meetings = []
    for i in range(count):
        host = organizers[i % len(organizers)]
        contact = contacts[i % len(contacts)]
        domain = contact["Email"].split("@", 1)[1]
        colleague = {"email": f"guest{i:04d}@{domain}", "name": f"Guest {i:04d}"}
        people: list[dict[str, str]] = [
            {"upn": host["upn"]},
            {"email": contact["Email"], "name": f"{contact['FirstName']} {contact['LastName']}"},
            colleague,
        ]
        if i % 3 == 0:
            lead = leads[i % len(leads)]
            name = f"{lead['FirstName']} {lead['LastName']}"
            people.append({"email": lead["Email"], "name": name})
        start = FIRST_START + timedelta(minutes=45 * i)
        meetings.append(
            {
                "id": f"b-{i:04d}",
                "subject": f"Benchmark call {i:04d}",
                "organizer": host["upn"],
                "start": _iso(start),
                "end": _iso(start + timedelta(minutes=30)),
                "participants": people,
                "transcript": _transcript([host["name"], people[1]["name"], colleague["name"]]),
                "transcript_ready_after_s": 0,
                "recording": True,
            }
        )
    doc["meetings"] = meetings
    return doc


def write(path: Path, count: int) -> scenarios.Scenario:
    """Write the scenario to `path` and return it parsed (which validates it)."""
    doc = build(count)
    parsed = scenarios.parse(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return parsed
