"""Conversation insights: hand-computed figures on fixture transcripts, one table per insight."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workers import insights
from workers.meeting import ResolvedMeeting, ResolvedParticipant, ResolvedTranscript
from workers.vtt import Transcript, parse


def person(name: str, kind: str) -> ResolvedParticipant:
    return ResolvedParticipant(key=name, name=name, email=None, role="attendee", kind=kind)


MEETING = ResolvedMeeting(
    meeting_key="m-1",
    online_meeting_id=None,
    call_record_id=None,
    subject="Renewal",
    start=datetime(2026, 11, 20, 15, tzinfo=UTC),
    end=datetime(2026, 11, 20, 16, tzinfo=UTC),
    organizer_email="alice@contoso.com",
    reason="external_participants",
    participants=(
        person("Alice Adams", "internal"),
        person("Bob Brown", "internal"),
        person("Carol Diaz", "external"),
        person("Dan Eve", "external"),
    ),
    transcripts=(ResolvedTranscript("t-1", "WEBVTT\n"),),
)


def stamp(seconds: float) -> str:
    return f"00:{int(seconds) // 60:02d}:{seconds % 60:06.3f}"


def vtt(*cues: tuple[float, float, str | None, str]) -> Transcript:
    """A transcript of (start, end, speaker or None, words), in this file order."""
    blocks = [
        f"{stamp(a)} --> {stamp(b)}\n" + (f"<v {who}>{text}</v>" if who else text)
        for a, b, who, text in cues
    ]
    return parse("WEBVTT\n\n" + "\n\n".join(blocks) + "\n")


# Turns: Alice 0-10, Carol 12-35 (two cues), Alice 37-47, Carol 50-60, Alice 61-91 (her
# name written in other case and spacing).
BASIC = [
    vtt(
        (0, 10, "Alice Adams", "Hello."),
        (12, 30, "Carol Diaz", "We are looking at options."),
        (30, 35, "Carol Diaz", "Budget is tight."),
        (37, 47, "Alice Adams", "Understood."),
        (50, 60, "Carol Diaz", "What now?"),
        (61, 91, "alice  ADAMS", "Let me explain."),
    )
]
# Talking over: Carol 0-20, Alice 15-25, Carol 24-40, Alice 45-50; the file lists them out
# of spoken order.
OVERLAP = [
    vtt(
        (0, 20, "Carol Diaz", "A long question."),
        (24, 40, "Carol Diaz", "Another point."),
        (15, 25, "Alice Adams", "Sure."),
        (45, 50, "Alice Adams", "Right."),
    )
]
# One speaker with a pause: one turn of 60 s.
ALONE = [vtt((0, 30, "Alice Adams", "Part one."), (31, 60, "Alice Adams", "Part two."))]
# Customers among themselves: Carol 0-10, Dan 10-40, Carol 42-50.
EXTERNAL_ONLY = [
    vtt(
        (0, 10, "Carol Diaz", "Dan?"),
        (10, 40, "Dan Eve", "Our story."),
        (42, 50, "Carol Diaz", "Indeed."),
    )
]
# Two transcripts, each on its own clock: Carol 0-10 then Alice 13-20; Alice 0-40 then
# Carol 41-50. Alice's turns either side of the gap are two turns, and no switch.
SEVERAL = [
    vtt((0, 10, "Carol Diaz", "Hi."), (13, 20, "Alice Adams", "Hello.")),
    vtt((0, 40, "Alice Adams", "Our offer."), (41, 50, "Carol Diaz", "Thanks.")),
]
# Carol 0-10, music without a speaker 10-20, an unknown 20-25, Alice 30-40.
UNKNOWN = [
    vtt(
        (0, 10, "Carol Diaz", "Hi."),
        (10, 20, None, "[music]"),
        (20, 25, "Nobody Known", "Hello?"),
        (30, 40, "Alice Adams", "Welcome."),
    )
]
EMPTY = [Transcript(cues=())]
CASES = {
    "basic": BASIC,
    "overlap": OVERLAP,
    "alone": ALONE,
    "external_only": EXTERNAL_ONLY,
    "several": SEVERAL,
    "unknown": UNKNOWN,
    "empty": EMPTY,
}


def figures(case: str) -> insights.Insights:
    return insights.compute(MEETING, CASES[case])


class TestSpeakerCount:
    """Different people who spoke, by display name whatever its case; cues without one ignored."""

    @pytest.mark.parametrize(
        ("case", "expected"),
        [("basic", 2), ("overlap", 2), ("alone", 1), ("external_only", 2), ("several", 2),
         ("unknown", 3), ("empty", 0)],
    )  # fmt: skip
    def test_count(self, case: str, expected: int) -> None:
        assert figures(case).speaker_count == expected


class TestLongestTurns:
    """The longest uninterrupted stretch of an internal and of an external speaker."""

    @pytest.mark.parametrize(
        ("case", "monologue", "story"),
        [("basic", 30, 23), ("overlap", 10, 20), ("alone", 60, None),
         ("external_only", None, 30), ("several", 40, 10), ("unknown", 10, 10),
         ("empty", None, None)],
    )  # fmt: skip
    def test_longest(self, case: str, monologue: int | None, story: int | None) -> None:
        found = figures(case)
        assert (found.longest_monologue_s, found.longest_customer_story_s) == (monologue, story)


class TestInteractivity:
    """Changes of speaker per minute, from first words to last of each transcript."""

    @pytest.mark.parametrize(
        ("case", "expected"),
        [
            ("basic", 2.64),  # 4 switches in 91 s
            ("overlap", 3.6),  # 3 in 50 s
            ("alone", 0.0),  # none in 60 s
            ("external_only", 2.4),  # 2 in 50 s
            ("several", 1.71),  # 1 + 1 in 20 + 50 s; none across the gap
            ("unknown", 3.0),  # 2 in 40 s: the unknown speaker is a turn, the music is not
            ("empty", None),
        ],
    )
    def test_per_minute(self, case: str, expected: float | None) -> None:
        assert figures(case).interactivity == expected


class TestPatience:
    """Mean pause before an internal speaker answers an external one; talking over waits 0 s."""

    @pytest.mark.parametrize(
        ("case", "expected"),
        [
            ("basic", 1.5),  # 37 - 35 and 61 - 60
            ("overlap", 2.5),  # 0 (15 < 20) and 45 - 40
            ("alone", None),
            ("external_only", None),
            ("several", 3.0),  # 13 - 10; Alice → Carol in the second is not an answer
            ("unknown", None),  # Carol → unknown → Alice: nobody internal answered Carol
            ("empty", None),
        ],
    )
    def test_mean_pause(self, case: str, expected: float | None) -> None:
        assert figures(case).patience_s == expected


class TestNextSteps:
    """Sentences that commit to an action, as said, each once, within 1,000 characters."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("I'll send the proposal by Friday.", "I'll send the proposal by Friday."),
            ("Thanks. We will follow up next week!", "We will follow up next week!"),
            ("I\u2019ll share the deck. Great.", "I\u2019ll share the deck."),
            ("Let's book a call. Bye.", "Let's book a call."),
            ("We're going to loop in legal", "We're going to loop in legal"),
            ("Our next steps are clear.", "Our next steps are clear."),
            ("Will you send it? I will check.", "I will check."),
            ("Shall we start?", None),  # a question commits nobody
            ("Illustrate it. Willow is nice. Lettuce.", None),  # whole words only
            ("The weather is fine.", None),
        ],
    )
    def test_sentences(self, text: str, expected: str | None) -> None:
        found = insights.next_steps([vtt((0, 5, "Alice Adams", text))])
        assert found == (f"Alice Adams: {expected}" if expected else None)

    def test_spoken_order_across_transcripts_each_once(self) -> None:
        first = vtt((5, 9, "Carol Diaz", "We will review it."), (0, 4, None, "I'll start."))
        second = vtt((0, 3, "Alice Adams", "I'll send it."), (4, 6, "Carol Diaz",
                                                              "We will review it."))  # fmt: skip
        assert insights.next_steps([first, second]) == (
            "I'll start.\nCarol Diaz: We will review it.\nAlice Adams: I'll send it."
        )

    def test_cut_at_a_line_boundary(self) -> None:
        cues = [(float(i), i + 0.5, "Bob Brown", f"I will do task {i:03d}.") for i in range(60)]
        found = insights.next_steps([vtt(*cues)])
        assert found is not None and len(found) <= insights.NEXT_STEPS_LIMIT
        lines = found.split("\n")
        assert lines[0] == "Bob Brown: I will do task 000." and len(lines) == 1001 // 31
        assert all(line.endswith(".") for line in lines)

    def test_limit_counts_utf16_and_cuts_a_lone_long_sentence(self) -> None:
        found = insights.next_steps([vtt((0, 1, "Bob", "I will " + "\U0001f600" * 600 + "."))])
        assert found is not None and found.startswith("Bob: I will \U0001f600")
        assert len(found.encode("utf-16-le")) // 2 <= insights.NEXT_STEPS_LIMIT
        assert len(found.encode("utf-16-le")) // 2 >= insights.NEXT_STEPS_LIMIT - 1


class TestTurns:
    """A turn runs until another named speaker starts; several cues of one speaker join."""

    def test_basic_turns(self) -> None:
        kinds = insights.speaker_kinds(MEETING)
        got = [(t.speaker, t.kind, t.start_s, t.end_s) for t in insights.turns(BASIC[0], kinds)]
        assert got == [
            ("alice adams", "internal", 0, 10),
            ("carol diaz", "external", 12, 35),
            ("alice adams", "internal", 37, 47),
            ("carol diaz", "external", 50, 60),
            ("alice adams", "internal", 61, 91),
        ]

    def test_first_participant_of_a_name_decides_its_kind(self) -> None:
        twice = (person("Sam Lee", "external"), person("sam lee", "internal"))
        m = ResolvedMeeting(**{**MEETING.__dict__, "participants": twice})
        assert insights.speaker_kinds(m) == {"sam lee": "external"}
