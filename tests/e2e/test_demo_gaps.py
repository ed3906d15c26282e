"""`ingest demo` on a tenant whose Teams application access policy leaves one user out
(emulators/scenarios/access-policy-gap.json), with the live shapes beside it (a meeting with
two transcripts in Graph's short timestamps, a late callRecord, batched notifications): that
user's meetings fail with the cmdlets in `ingest explain`, every eligible meeting's
transcripts reach Salesforce exactly once and in spoken order, and nothing else fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.graph.world import World
from emulators.scenario import load

INGEST = str(Path(sys.executable).parent / "ingest")
SCENARIO = (
    Path(__file__).resolve().parents[2] / "emulators" / "scenarios" / "access-policy-gap.json"
)
EXPECTED = {"g-001": "pushed", "g-002": "failed", "g-003": "pushed", "g-004": "skipped"}


@pytest.mark.slow
def test_access_policy_gap(redis_url: str, tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPH_", "SF_", "INGEST_", "POLICY_", "INTERNAL_"))
    }
    env["REDIS_URL"] = redis_url  # kept after the demo, so that `ingest explain` can read it
    dump = tmp_path / "dump.json"
    done = subprocess.run(
        [INGEST, "demo", "--json", "--scenario", str(SCENARIO), "--salesforce-dump", str(dump)],
        capture_output=True, text=True, timeout=280, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]  # a meeting failed: the demo says so
    doc = json.loads(done.stdout)
    assert {m["id"]: m["outcome"] for m in doc["meetings"]} == EXPECTED
    assert doc["counts"] == {"pushed": 2, "skipped": 1, "no_transcript": 0, "failed": 1}
    records = json.loads(dump.read_text())
    assert sorted(r["Name"] for r in records["Teams_Meeting__c"]) == [
        "Fabrikam onboarding", "Litware demo"
    ]  # fmt: skip
    # Every transcript once, in the order made; each one's text in spoken order.
    by_meeting: dict[str, list[dict[str, object]]] = {}
    ids = {r["Id"]: r["Name"] for r in records["Teams_Meeting__c"]}
    for row in records["Teams_Transcript__c"]:
        by_meeting.setdefault(ids[row["Meeting__c"]], []).append(row)
    assert {name: len(rows) for name, rows in by_meeting.items()} == {
        "Fabrikam onboarding": 2, "Litware demo": 1
    }  # fmt: skip
    onboarding = sorted(by_meeting["Fabrikam onboarding"], key=lambda r: str(r["Name"]))
    assert [r["Text__c"] for r in onboarding] == [
        "Alice Adams: Welcome aboard, Carol.\nCarol Diaz: Thanks, glad to start.",
        "Alice Adams: We are recording again: next steps.\n"
        "Carol Diaz: I will send the contract on Friday.",
    ]
    world = World(load(SCENARIO))
    chloe = world.organizer_id("g-002")
    explained = subprocess.run(
        [INGEST, "explain", world.call_record_id("g-002"), "--json"],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    story = json.loads(explained.stdout)
    assert story["outcome"] == "failed"
    assert "New-CsApplicationAccessPolicy" in story["outcome_reason"]
    assert (
        f'Grant-CsApplicationAccessPolicy -PolicyName "ingest" -Identity "{chloe}"'
        in (story["outcome_reason"])
    )
