"""Teams WebVTT transcripts: parse the text Graph returns into cues, lines and simple figures.

Lenient where Teams is sloppy (BOM, CR/CRLF, stray blank lines, negative offsets, unclosed
voice tags, empty cues); strict where the file cannot be a transcript at all (no `WEBVTT`
signature, a timing line that does not parse, text before the first cue), which raises
`BadInput` naming the line.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from dataclasses import dataclass, field

from core.exceptions import BadInput

SALESFORCE_TEXT_LIMIT = 131_072  # Teams_Transcript__c.Text__c, in characters (§6)

_TIMESTAMP = r"-?(?:[0-9]{1,9}:)?[0-9]{1,2}:[0-9]{2}[.,][0-9]{1,9}"  # hours may pass 99
_TIMING = re.compile(rf"({_TIMESTAMP})[ \t]*-->[ \t]*({_TIMESTAMP})(?:[ \t]+.*)?", re.ASCII)
_PARTS = re.compile(r"(-?)(?:([0-9]+):)?([0-9]+):([0-9]+)[.,]([0-9]+)", re.ASCII)
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?(?:[ \t]+([^>]*))?>")
_LANG = re.compile(r"<lang(?:\.[^\s>]*)?[ \t]+([^>\s]+)[^>]*>")
_TAG = re.compile(r"<[^>]*(?:>|$)")  # an unclosed '<' runs to the end, as in WebVTT
_QUESTION = re.compile(r"[?\uff1f\u061f]+")
_SKIPPED_BLOCKS = ("NOTE", "STYLE", "REGION")


@dataclass(frozen=True)
class Cue:
    """One cue: offsets in seconds (may be negative in Teams output), speaker and plain text."""

    start_s: float
    end_s: float
    speaker: str | None
    text: str

    def line(self) -> str:
        return f"{self.speaker}: {self.text}" if self.speaker else self.text


@dataclass(frozen=True)
class Transcript:
    """The cues of a transcript, in file order, each with non-empty text."""

    cues: tuple[Cue, ...]
    language: str | None = None

    @property
    def cue_count(self) -> int:
        return len(self.cues)

    def lines(self) -> list[str]:
        """`Speaker: words` per cue in spoken order (by start time; ties keep file order)."""
        return [cue.line() for cue in sorted(self.cues, key=lambda c: c.start_s)]

    def talk_seconds(self) -> dict[str, float]:
        """Seconds spoken per named speaker; cues without a speaker are not attributed."""
        totals: dict[str, float] = defaultdict(float)
        for cue in self.cues:
            if cue.speaker:
                totals[cue.speaker] += max(0.0, cue.end_s - cue.start_s)
        return {speaker: round(seconds, 3) for speaker, seconds in totals.items()}

    def question_count(self) -> int:
        """Questions asked: runs of question marks (ASCII, full-width, Arabic) in all cues."""
        return sum(len(_QUESTION.findall(cue.text)) for cue in self.cues)

    def text_for_salesforce(self, limit: int = SALESFORCE_TEXT_LIMIT) -> tuple[str, bool]:
        """The lines joined with newlines, cut at a line boundary to fit `limit`, and whether cut.

        Length is counted in UTF-16 code units, as Salesforce counts. A first line longer than
        the limit on its own is cut inside the line rather than dropping everything.
        """
        if limit < 0:
            raise ValueError("limit must be 0 or more")
        lines = self.lines()
        kept: list[str] = []
        used = 0
        for line in lines:
            cost = _utf16_len(line) + (1 if kept else 0)
            if used + cost > limit:
                break
            kept.append(line)
            used += cost
        if len(kept) == len(lines):
            return "\n".join(kept), False
        if not kept:
            return _cut_utf16(lines[0], limit), True
        return "\n".join(kept), True


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _cut_utf16(text: str, limit: int) -> str:
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return text[:i]
    return text


@dataclass
class _RawCue:
    start_s: float
    end_s: float
    lines: list[str] = field(default_factory=list)


def parse(text: str) -> Transcript:
    """The transcript in WebVTT `text`; raises BadInput naming the line when it is not one."""
    clean = text.removeprefix("\ufeff").replace("\x00", "\ufffd")
    rows = clean.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = _skip_blank(rows, 0)
    if i == len(rows) or not _is_signature(rows[i]):
        raise BadInput(f"line {min(i, len(rows) - 1) + 1}: expected the WEBVTT signature")
    i += 1
    header: dict[str, str] = {}
    while i < len(rows) and rows[i].strip() and "-->" not in rows[i]:
        key, sep, value = rows[i].partition(":")
        if sep:
            header[key.strip().lower()] = value.strip()
        i += 1
    raw: list[_RawCue] = []
    while (i := _skip_blank(rows, i)) < len(rows):
        end = i
        while end < len(rows) and rows[end].strip():
            end += 1
        _read_block(rows, i, end, raw)
        i = end
    cues = tuple(cue for cue in (_build(r) for r in raw) if cue is not None)
    language = header.get("language") or _cue_language(raw)
    return Transcript(cues=cues, language=language or None)


def _read_block(rows: list[str], begin: int, end: int, raw: list[_RawCue]) -> None:
    """Adds the cues of the block `rows[begin:end]` (no blank lines inside) to `raw`."""
    first = rows[begin].strip()
    if any(first == kw or first.startswith((kw + " ", kw + "\t")) for kw in _SKIPPED_BLOCKS):
        return
    k = begin
    if "-->" not in rows[k]:
        if k + 1 < end and "-->" in rows[k + 1]:
            k += 1  # a cue identifier
        elif raw:
            # Text after a stray blank line inside a cue belongs to that cue.
            raw[-1].lines.extend(rows[begin:end])
            return
        else:
            raise BadInput(f"line {begin + 1}: text outside a cue")
    while k < end:
        start_s, end_s = _timing(rows[k], k + 1)
        cue = _RawCue(start_s, end_s)
        k += 1
        # A timing line ends the cue even without a blank line before it, as WebVTT says.
        while k < end and not _TIMING.fullmatch(rows[k].strip()):
            cue.lines.append(rows[k])
            k += 1
        raw.append(cue)


def _timing(row: str, lineno: int) -> tuple[float, float]:
    match = _TIMING.fullmatch(row.strip())
    if match is None:
        raise BadInput(f"line {lineno}: malformed cue timing {row.strip()[:80]!r}")
    return _seconds(match.group(1), lineno), _seconds(match.group(2), lineno)


def _seconds(stamp: str, lineno: int) -> float:
    match = _PARTS.fullmatch(stamp)
    if match is None:  # the timing pattern admits only what this pattern reads
        raise BadInput(f"line {lineno}: malformed timestamp {stamp!r}")
    sign, hours, minutes, seconds, fraction = match.groups()
    if int(minutes) > 59 or int(seconds) > 59:
        raise BadInput(f"line {lineno}: minutes and seconds must be under 60 in {stamp!r}")
    whole = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    value = whole + float(f"0.{fraction}")
    return -value if sign else value


def _build(raw: _RawCue) -> Cue | None:
    joined = " ".join(line.strip() for line in raw.lines)
    voice = _VOICE.search(joined)
    speaker = _plain(voice.group(1) or "") if voice else ""
    text = _plain(_TAG.sub("", joined))
    if not text:
        return None  # Teams emits cues with no words; they carry nothing
    return Cue(raw.start_s, raw.end_s, speaker or None, text)


def _plain(fragment: str) -> str:
    """Entities decoded (&amp; &lt; &nbsp; &lrm; numeric ...) and whitespace collapsed."""
    return " ".join(html.unescape(fragment).split())


def _cue_language(raw: list[_RawCue]) -> str | None:
    """The one language all `<lang>` tags agree on, if any."""
    tags = {m.group(1) for cue in raw for line in cue.lines for m in _LANG.finditer(line)}
    return tags.pop() if len(tags) == 1 else None


def _skip_blank(rows: list[str], i: int) -> int:
    while i < len(rows) and not rows[i].strip():
        i += 1
    return i


def _is_signature(row: str) -> bool:
    row = row.rstrip()
    return row == "WEBVTT" or row.startswith(("WEBVTT ", "WEBVTT\t"))
