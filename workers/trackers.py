"""Tracker mentions in a meeting's transcripts (DESIGN §4 `[trackers]`, §6 mentions); pure.

A phrase matches as whole words: not inside a longer word ("Rival" is not found in
"rivalry"), whatever the case, and whatever the accents ("cafe" finds "Café" and "café"
finds "Cafe"): both sides are compared after Unicode decomposition without combining marks
and case folding. Words are Unicode words (`\\w`), so "Zürich" or "東京" are words too; the
spaces inside a phrase match any run of spaces. Offsets are seconds into the transcript; a
mention's key names its meeting, tracker, transcript, cue and place, so a replay writes the
same mentions again and a tracker removed leaves keys that are no longer made.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from workers.insights import fold, speaker_kinds
from workers.meeting import ResolvedMeeting
from workers.vtt import Transcript

SNIPPET_LIMIT = 255  # Teams_Meeting_Mention__c.Snippet__c
MAX_WRITTEN = 200  # mentions written per meeting (one sObject collection); the count is true


@dataclass(frozen=True)
class Mention:
    """One mention of a tracker's phrase in one cue."""

    tracker: str
    phrase: str  # as the tracker lists it
    speaker: str | None
    is_external: bool
    offset_s: float  # the cue's start, within its transcript
    snippet: str  # the cue's words around the mention, at most 255 characters
    where: str  # transcript/cue/character: unique within the meeting, stable across runs


def _plain(text: str) -> tuple[str, list[int]]:
    """`text` without accents, case-folded, and the index in `text` of each character made."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        bare = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        for c in bare.casefold():
            out.append(c)
            origin.append(i)
    return "".join(out), origin


def pattern(phrase: str) -> re.Pattern[str]:
    """Whole words of `phrase`, compared as `_plain` text."""
    words = [re.escape(_plain(w)[0]) for w in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)")


def snippet(text: str, start: int, end: int, limit: int = SNIPPET_LIMIT) -> str:
    """The cue's text when it fits `limit`, else the characters around `text[start:end]`
    with an ellipsis where it was cut."""
    if len(text) <= limit:
        return text
    budget = limit - 2  # room for two ellipses
    if end - start >= budget:
        return text[start : start + limit]
    left = max(0, start - (budget - (end - start)) // 2)
    right = min(len(text), left + budget)
    left = max(0, right - budget)
    return ("\u2026" if left else "") + text[left:right] + ("\u2026" if right < len(text) else "")


def find(
    meeting: ResolvedMeeting,
    transcripts: Sequence[Transcript],
    trackers: Sequence[tuple[str, Sequence[str]]],
) -> list[Mention]:
    """Every mention of every tracker, in spoken order per transcript (transcripts in the order
    made); a place two phrases of one tracker both match counts once, for the longer."""
    kinds = speaker_kinds(meeting)
    compiled = [
        (name, sorted(((p, pattern(p)) for p in phrases), key=lambda x: -len(x[0])))
        for name, phrases in trackers
    ]
    out: list[Mention] = []
    for t_index, transcript in enumerate(transcripts):
        cues = sorted(enumerate(transcript.cues), key=lambda c: c[1].start_s)
        for c_index, cue in cues:
            plain, origin = _plain(cue.text)
            external = kinds.get(fold(cue.speaker or "")) == "external"
            for name, phrases in compiled:
                taken: list[tuple[int, int]] = []
                for phrase, regex in phrases:
                    for match in regex.finditer(plain):
                        if match.end() == match.start():
                            continue
                        a, b = origin[match.start()], origin[match.end() - 1] + 1
                        if any(a < y and x < b for x, y in taken):
                            continue
                        taken.append((a, b))
                        out.append(
                            Mention(name, phrase, cue.speaker, external, cue.start_s,
                                    snippet(cue.text, a, b), f"{t_index}/{c_index}/{a}")
                        )  # fmt: skip
    return out
