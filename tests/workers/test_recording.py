"""Which file of the organizer's OneDrive Recordings folder is the meeting's recording."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workers import recording

START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
END = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def item(
    name: str, created: str, url: str | None = "https://x/r.mp4", **over: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "createdDateTime": created, "webUrl": url,
                           "file": {"mimeType": "video/mp4"}}  # fmt: skip
    doc.update(over)
    return doc


RENEWAL = "Renewal-20261120_150012-Meeting Recording.mp4"


class TestPick:
    """A video named after the subject, created while the meeting ran or up to 4 h after."""

    @pytest.mark.parametrize(
        ("files", "subject", "expected"),
        [
            ([item(RENEWAL, "2026-11-20T15:31:00Z")], "Renewal", RENEWAL),
            ([item(RENEWAL, "2026-11-20T15:31:00Z")], "  renewal ", RENEWAL),  # case, spaces
            ([item(RENEWAL, "2026-11-20T19:29:00Z")], "Renewal", RENEWAL),  # uploaded late
            ([item(RENEWAL, "2026-11-20T19:31:00Z")], "Renewal", None),  # too late
            ([item(RENEWAL, "2026-11-20T14:50:00Z")], "Renewal", None),  # before it began
            ([item(RENEWAL, "2026-11-20T15:31:00Z")], "Renewal 2", None),
            (
                [item("Renewal 2-20261120_150012-Meeting Recording.mp4", "2026-11-20T15:31:00Z")],
                "Renewal",
                None,
            ),  # another subject beginning alike
            (
                [item("Q&A pricing-20261120_150012-Meeting Recording.mp4", "2026-11-20T15:31:00Z")],
                "Q&A: pricing?",
                "Q&A pricing-20261120_150012-Meeting Recording.mp4",
            ),  # characters Teams drops
            ([item(RENEWAL, "2026-11-20T15:31:00Z", file=None, folder={})], "Renewal", None),
            ([item(RENEWAL, "2026-11-20T15:31:00Z", url=None)], "Renewal", None),
            ([item(RENEWAL, "not a time")], "Renewal", None),
            (
                [
                    item("Renewal-1-Meeting Recording.mp4", "2026-11-20T16:00:00Z"),
                    item(RENEWAL, "2026-11-20T15:32:00Z"),
                ],
                "Renewal",
                RENEWAL,
            ),  # nearest the end
            ([], "Renewal", None),
        ],
    )
    def test_pick(self, files: list[dict[str, Any]], subject: str, expected: str | None) -> None:
        found = recording.pick(files, subject, START, END)
        assert (found["name"] if found else None) == expected
