"""Conversation insights of a meeting computed from its transcript cues (DESIGN §6); pure.

Every figure is read from the cues of all the meeting's transcripts, in the order they were
made. Each transcript has its own clock (its offsets start again at zero), so turns, pauses
and the time spoken over are taken within one transcript and then added up: nothing spans
the gap between two transcripts, whose length the files do not say.

A *turn* is a run of cues of one speaker, in spoken order (by start; ties keep file order),
until another named speaker's cue starts; it lasts from its first cue's start to the latest
end among its cues. Cues without a speaker are nobody's and are skipped. Speakers are
matched to the meeting's participants by display name, case and spacing ignored, the same
way talk time is; a speaker matching nobody is neither internal nor external.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from workers.meeting import ResolvedMeeting
from workers.vtt import Cue, Transcript, fit_lines

NEXT_STEPS_LIMIT = 1000  # Teams_Meeting__c.Next_Steps__c, in characters

# A sentence ends at . ! ? (and their full-width forms) followed by a space or the end.
_SENTENCE = re.compile(r"[^.!?\u3002\uff01\uff1f]+(?:[.!?\u3002\uff01\uff1f]+|$)")
# Words that commit someone to an action: a first person's future ("I'll", "we will",
# "I'm going to", "let me", "let's"), or a named next step, follow-up or action item.
# English only; a question ("Will you send it?") commits nobody and is never taken.
_COMMITMENT = re.compile(
    r"\b(?:(?:i|we)\s*(?:'|\u2019)\s*ll|(?:i|we)\s+will|(?:i|we)\s+shall"
    r"|i\s*(?:'|\u2019)\s*m\s+going\s+to|we\s*(?:'|\u2019)\s*re\s+going\s+to"
    r"|(?:i|we)\s+am\s+going\s+to|(?:i|we)\s+are\s+going\s+to"
    r"|let\s+me|let\s*(?:'|\u2019)\s*s|let\s+us"
    r"|next\s+steps?|follow[\s-]?up|action\s+items?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Turn:
    """One speaker's uninterrupted stretch within one transcript."""

    speaker: str  # as folded for matching
    kind: str  # "internal", "external" or "unidentified"
    start_s: float
    end_s: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end_s - self.start_s)


@dataclass(frozen=True)
class Insights:
    """The figures written on Teams_Meeting__c; None where the transcript cannot say."""

    speaker_count: int
    longest_monologue_s: int | None
    longest_customer_story_s: int | None
    interactivity: float | None
    patience_s: float | None
    next_steps: str | None


def fold(name: str) -> str:
    """A display name as matched: case and spacing ignored."""
    return " ".join(name.casefold().split())


def speaker_kinds(meeting: ResolvedMeeting) -> dict[str, str]:
    """Folded display name → the participant's kind; the first participant of a name wins,
    as for talk time."""
    kinds: dict[str, str] = {}
    for person in meeting.participants:
        kinds.setdefault(fold(person.name), person.kind)
    return kinds


def _spoken(transcript: Transcript) -> list[Cue]:
    return sorted((c for c in transcript.cues if c.speaker), key=lambda c: c.start_s)


def turns(transcript: Transcript, kinds: dict[str, str]) -> list[Turn]:
    """The turns of one transcript in spoken order."""
    out: list[Turn] = []
    for cue in _spoken(transcript):
        name = fold(cue.speaker or "")
        if out and out[-1].speaker == name:
            last = out[-1]
            out[-1] = Turn(name, last.kind, last.start_s, max(last.end_s, cue.end_s))
        else:
            out.append(Turn(name, kinds.get(name, "unidentified"), cue.start_s, cue.end_s))
    return out


def speaker_count(transcripts: Sequence[Transcript]) -> int:
    """How many different people spoke, by display name."""
    return len({fold(c.speaker) for t in transcripts for c in t.cues if c.speaker})


def longest_turn(all_turns: Sequence[Sequence[Turn]], kind: str) -> int | None:
    """Seconds of the longest turn by a speaker of `kind`, rounded; None if none spoke."""
    lengths = [turn.seconds for ts in all_turns for turn in ts if turn.kind == kind]
    return round(max(lengths)) if lengths else None


def interactivity(
    transcripts: Sequence[Transcript], all_turns: Sequence[Sequence[Turn]]
) -> float | None:
    """Changes of speaker per minute of conversation (first words to last, per transcript)."""
    switches = sum(max(0, len(ts) - 1) for ts in all_turns)
    seconds = 0.0
    for transcript in transcripts:
        spoken = _spoken(transcript)
        if spoken:
            seconds += max(0.0, max(c.end_s for c in spoken) - spoken[0].start_s)
    if seconds <= 0:
        return None
    return round(switches * 60.0 / seconds, 2)


def patience(all_turns: Sequence[Sequence[Turn]]) -> float | None:
    """Mean seconds between an external speaker's turn ending and an internal speaker's
    answer starting; an answer that talks over the customer waited 0 s."""
    pauses = [
        max(0.0, after.start_s - before.end_s)
        for ts in all_turns
        for before, after in itertools.pairwise(ts)
        if before.kind == "external" and after.kind == "internal"
    ]
    return round(sum(pauses) / len(pauses), 2) if pauses else None


def next_steps(transcripts: Sequence[Transcript], limit: int = NEXT_STEPS_LIMIT) -> str | None:
    """`Speaker: sentence` lines, in spoken order, of the sentences that commit to an action,
    each once, cut at a line boundary to fit `limit` characters (UTF-16 code units, as
    Salesforce counts); None if there are none."""
    lines: list[str] = []
    for transcript in transcripts:
        for cue in sorted(transcript.cues, key=lambda c: c.start_s):
            for match in _SENTENCE.finditer(cue.text):
                sentence = match.group(0).strip()
                if sentence.endswith(("?", "\uff1f")) or not _COMMITMENT.search(sentence):
                    continue
                line = f"{cue.speaker}: {sentence}" if cue.speaker else sentence
                if line not in lines:
                    lines.append(line)
    kept = fit_lines(lines, limit)
    if not kept and lines:  # one sentence longer than the field: its beginning
        return lines[0].encode("utf-16-le")[: 2 * limit].decode("utf-16-le", "ignore")
    return "\n".join(kept) or None


def compute(meeting: ResolvedMeeting, transcripts: Sequence[Transcript]) -> Insights:
    """Every insight of `meeting` from its parsed transcripts, in the order they were made."""
    kinds = speaker_kinds(meeting)
    all_turns = [turns(t, kinds) for t in transcripts]
    return Insights(
        speaker_count=speaker_count(transcripts),
        longest_monologue_s=longest_turn(all_turns, "internal"),
        longest_customer_story_s=longest_turn(all_turns, "external"),
        interactivity=interactivity(transcripts, all_turns),
        patience_s=patience(all_turns),
        next_steps=next_steps(transcripts),
    )
