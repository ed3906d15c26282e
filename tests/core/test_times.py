"""Graph timestamps (core/times.py): every form Graph writes reads as one aware datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core import times

NOON = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


class TestParse:
    """Each form Graph writes gives the same aware instant; anything else gives None."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-11-20T15:00:00Z", NOON),
            ("2026-11-20T15:00:00.1234567Z", NOON + timedelta(microseconds=123456)),
            ("2026-11-20T15:00:00.5Z", NOON + timedelta(milliseconds=500)),
            ("2026-11-20T15:00:00+00:00", NOON),
            ("2026-11-20T16:00:00+01:00", NOON),
            ("2026-11-20T15:00:00", NOON),  # no offset: Graph means UTC
            (" 2026-11-20T15:00:00z ", NOON),
        ],
    )
    def test_forms(self, text: str, expected: datetime) -> None:
        parsed = times.parse(text)
        assert parsed == expected
        assert parsed is not None and parsed.tzinfo is not None

    @pytest.mark.parametrize("value", [None, "", "  ", "yesterday", "2026-13-01T00:00:00Z", 12])
    def test_not_a_time(self, value: object) -> None:
        assert times.parse(value) is None

    def test_naive_datetime_is_taken_as_utc(self) -> None:
        assert times.parse(datetime(2026, 11, 20, 15)) == NOON

    def test_aware_datetime_is_kept(self) -> None:
        other = datetime(2026, 11, 20, 16, tzinfo=timezone(timedelta(hours=1)))
        assert times.parse(other) is other


class TestWrite:
    """Times go to Graph filters in UTC, whole seconds, with `Z`."""

    def test_graph(self) -> None:
        local = datetime(2026, 11, 20, 16, 0, 30, 999, tzinfo=timezone(timedelta(hours=1)))
        assert times.graph(local) == "2026-11-20T15:00:30Z"

    def test_seconds_until(self) -> None:
        assert times.seconds_until("2026-11-20T15:01:00Z", NOON) == 60
        assert times.seconds_until("2026-11-20T14:59:00Z", NOON) == -60
        assert times.seconds_until("garbage", NOON) is None
