"""Tracker mentions: whole words, any case, any accents; stable keys; snippets that fit."""

from __future__ import annotations

import pytest

from policy.config import PolicyConfigError, parse_toml
from tests.workers.test_insights import MEETING, vtt
from workers import trackers


def found(text: str, phrases: list[str], speaker: str = "Carol Diaz") -> list[str]:
    mentions = trackers.find(MEETING, [vtt((0, 5, speaker, text))], [("t", phrases)])
    return [m.phrase for m in mentions]


class TestWholeWords:
    """A phrase is found as whole words only, across case and accents."""

    @pytest.mark.parametrize(
        ("text", "phrases", "count"),
        [
            ("We looked at Rival last week.", ["Rival"], 1),
            ("The rivalry is old.", ["Rival"], 0),  # not inside a longer word
            ("The rivalry is old.", ["Rival", "rivalry"], 1),  # unless listed
            ("RIVAL, rival; Rival!", ["rival"], 3),  # any case, punctuation around
            ("Rival's offer", ["Rival"], 1),
            ("Globex-Rival merger", ["Rival"], 1),  # a hyphen is not a letter
            ("le café est bon", ["cafe"], 1),  # accents either side
            ("le CAFE est bon", ["Café"], 1),
            ("Zürich office", ["zurich"], 1),
            ("straße", ["STRASSE"], 1),  # case folding, as Unicode does it
            ("東京 office", ["東京"], 1),
            ("東京都 office", ["東京"], 0),  # CJK runs are one word
            ("a  price   list here", ["price list"], 1),  # spaces inside a phrase
            ("pricelist", ["price list"], 0),
            ("no mention", ["Rival"], 0),
        ],
    )
    def test_matches(self, text: str, phrases: list[str], count: int) -> None:
        assert len(found(text, phrases)) == count

    def test_overlapping_phrases_count_once_for_the_longer(self) -> None:
        mentions = trackers.find(
            MEETING, [vtt((0, 5, "Carol Diaz", "the price list, the price"))],
            [("pricing", ["price", "price list"])],
        )  # fmt: skip
        assert sorted(m.phrase for m in mentions) == ["price", "price list"]


class TestMention:
    """Speaker, side, offset and a key that names transcript, cue and place."""

    def test_fields(self) -> None:
        first = vtt((3, 5, "Carol Diaz", "Rival is cheaper"), (0, 2, "Alice Adams", "Hi Rival"))
        second = vtt((1.5, 4, "alice adams", "rival again"))
        mentions = trackers.find(MEETING, [first, second], [("competitors", ["Rival"])])
        got = [(m.speaker, m.is_external, m.offset_s, m.where) for m in mentions]
        assert got == [
            ("Alice Adams", False, 0.0, "0/1/3"),  # spoken order: the second cue first
            ("Carol Diaz", True, 3.0, "0/0/0"),
            ("alice adams", False, 1.5, "1/0/0"),
        ]

    def test_snippet_fits(self) -> None:
        text = "word " * 100 + "Rival" + " word" * 100
        (m,) = trackers.find(MEETING, [vtt((0, 5, "Bob Brown", text))], [("c", ["Rival"])])
        assert len(m.snippet) <= trackers.SNIPPET_LIMIT and "Rival" in m.snippet
        assert m.snippet.startswith("\u2026") and m.snippet.endswith("\u2026")


class TestPolicyTable:
    """`[trackers]` in POLICY_FILE: name -> list of words or phrases, checked."""

    def test_parsed(self) -> None:
        policy = parse_toml(
            'min_duration_seconds = 5\n[trackers]\ncompetitors = ["Rival", "Globex", "rival"]\n'
            'pricing = ["discount", "price  list"]\n'
        )
        assert policy.trackers == (
            ("competitors", ("Rival", "Globex")),
            ("pricing", ("discount", "price list")),
        )

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ('[trackers]\nc = "Rival"\n', "trackers.c"),
            ('[trackers]\nc = ["Rival", 3]\n', "trackers.c[1]"),
            ('[trackers]\nc = ["  "]\n', "trackers.c[0]"),
            ("trackers = 3\n", "trackers"),
        ],
    )
    def test_errors_name_the_key(self, text: str, key: str) -> None:
        with pytest.raises(PolicyConfigError) as info:
            parse_toml(text)
        assert info.value.key == key
