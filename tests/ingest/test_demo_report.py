"""The demo's readable summary says why each failed meeting failed, as `ingest explain` does."""

from __future__ import annotations

from emulators.scenario import load
from ingest.demo.report import document, table
from ingest.demo.runner import DemoRun


def test_failed_meetings_show_their_fix() -> None:
    scenario = load()
    first, second = scenario.meetings[0].id, scenario.meetings[1].id
    fix = "No Teams application access policy: ... Grant-CsApplicationAccessPolicy ..."
    run = DemoRun(
        meetings={
            first: {"decision": "eligible", "reason": "external_participants",
                    "outcome": "pushed", "salesforce_ids": {"meeting": "a01"}},
            second: {"outcome": "failed", "outcome_reason": fix},
        },
        settled=True,
    )  # fmt: skip
    doc = document(scenario, run)
    text = table(scenario, run, doc)
    assert f"{second} failed: {fix}" in text.splitlines()
    assert f"{first} failed" not in text
