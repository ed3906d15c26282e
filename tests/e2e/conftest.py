"""End-to-end tests: msgraph's generated builders warn as they are first imported (not ours);
the real Salesforce stage, watched."""

from __future__ import annotations

from typing import Any

import pytest

from workers.salesforce import stage


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"))
            item.add_marker(
                pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")
            )


@pytest.fixture
def pushed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return watch_pushes(monkeypatch)


def watch_pushes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The real Salesforce stage, watched: each push's meeting key, in order. The stage writes
    to the Salesforce emulator that `Stack(..., salesforce=True)` runs."""
    calls: list[str] = []
    real = stage.push

    def push(resolved: Any) -> dict[str, str]:
        assert all(t.vtt.startswith("WEBVTT") for t in resolved.transcripts)
        calls.append(resolved.meeting_key)
        return real(resolved)

    monkeypatch.setattr(stage, "push", push)
    return calls
