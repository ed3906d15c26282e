"""Teams WebVTT transcripts: parse the text Graph returns into cues, lines and simple figures.

Accepts every form Teams, Graph's documentation and the W3C WebVTT syntax use: timestamps
with or without hours, padded or not (`00:00:05.320`, `00:05.320`, and `0:0:5.320` as in
Graph's "Get callTranscript" example), with one to three fractional digits (more are read
too); cue identifiers (Teams writes `<guid>/12-0`); cue settings; NOTE, STYLE and REGION
blocks; a BOM; LF, CRLF or CR line ends; voice spans with or without `</v>`, several to a
cue; other tags and character references. Lenient where Teams is sloppy (stray blank lines,
negative offsets, empty cues); strict where the text cannot be a transcript (no `WEBVTT`
signature, a timing line that does not parse, text before the first cue), which raises
`BadInput` naming the line.

Work is linear in the length of the text: tags are found with `str.find` rather than with
patterns that backtrack, so a hostile transcript costs no more than an honest one as long.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.exceptions import BadInput

SALESFORCE_TEXT_LIMIT = 131_072  # Teams_Transcript__c.Text__c, in characters (§6)

# Hours are optional and may pass 99; Graph's docs write every field unpadded (`0:0:5.320`).
_TIMESTAMP = r"-?(?:[0-9]{1,9}:)?[0-9]{1,2}:[0-9]{1,2}[.,][0-9]{1,9}"
_TIMING = re.compile(rf"({_TIMESTAMP})[ \t]*-->[ \t]*({_TIMESTAMP})(?:[ \t]+.*)?", re.ASCII)
_PARTS = re.compile(r"(-?)(?:([0-9]+):)?([0-9]+):([0-9]+)[.,]([0-9]+)", re.ASCII)
# The references `html.unescape` reads (its own pattern), so that each is decoded by it.
_REFERENCE = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
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
    """The cues of a transcript in file order, one per voice span, each with non-empty text."""

    cues: tuple[Cue, ...]
    language: str | None = None

    @property
    def cue_count(self) -> int:
        return len(self.cues)

    def lines(self) -> list[str]:
        """`Speaker: words` per cue in spoken order (by start time; ties keep file order)."""
        return [cue.line() for cue in sorted(self.cues, key=lambda c: c.start_s)]

    def talk_seconds(self) -> dict[str, float]:
        """Seconds spoken per named speaker; cues without a speaker are not attributed.

        Voices sharing one cue are each counted for the whole cue: the file does not say
        how they split it.
        """
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
        kept = fit_lines(lines, limit)
        if len(kept) == len(lines):
            return "\n".join(kept), False
        if not kept:
            return _cut_utf16(lines[0], limit), True
        return "\n".join(kept), True


def fit_lines(lines: Sequence[str], limit: int) -> list[str]:
    """The first lines that fit `limit` joined by newlines, counted in UTF-16 code units as
    Salesforce counts a text field's length."""
    kept: list[str] = []
    used = 0
    for line in lines:
        cost = utf16_len(line) + (1 if kept else 0)
        if used + cost > limit:
            break
        kept.append(line)
        used += cost
    return kept


def utf16_len(text: str) -> int:
    """Length as Salesforce counts it, in UTF-16 code units."""
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
    languages: set[str] = set()
    cues = tuple(cue for r in raw for cue in _build(r, languages))
    # Without a `Language:` header, the one language all `<lang>` tags agree on, if any.
    language = header.get("language") or (languages.pop() if len(languages) == 1 else None)
    return Transcript(cues=cues, language=language or None)


def _read_block(rows: list[str], begin: int, end: int, raw: list[_RawCue]) -> None:
    """Adds the cues of the block `rows[begin:end]` (no blank lines inside) to `raw`."""
    first = rows[begin].strip()
    comment = any(first == kw or first.startswith((kw + " ", kw + "\t")) for kw in _SKIPPED_BLOCKS)
    second = rows[begin + 1] if begin + 1 < end else ""
    if "-->" in first and not comment:
        k = begin
    elif "-->" in second and (not comment or _is_timing(second)):
        k = begin + 1  # a cue identifier; WebVTT reads even `NOTE …` there as one
    else:
        # A timing line ends the text before it even without a blank line, as WebVTT says.
        k = begin
        while k < end and not _is_timing(rows[k]):
            k += 1
        if comment:
            pass
        elif raw:
            raw[-1].lines.extend(rows[begin:k])  # text after a stray blank line inside a cue
        else:
            raise BadInput(f"line {begin + 1}: text outside a cue")
    while k < end:
        start_s, end_s = _timing(rows[k], k + 1)
        k += 1
        text_begins = k
        while k < end and not _is_timing(rows[k]):
            k += 1
        raw.append(_RawCue(start_s, end_s, rows[text_begins:k]))


def _is_timing(row: str) -> bool:
    return _TIMING.fullmatch(row.strip()) is not None


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
    # One exact division: `0:0:5.32` and `00:00:05.320` give the very same float.
    scale: int = 10 ** len(fraction)
    value = (whole * scale + int(fraction)) / scale
    return -value if sign else value


def _build(raw: _RawCue, languages: set[str]) -> list[Cue]:
    """One cue per voice span with words; Teams also writes cues with none, which carry nothing."""
    spans = _spans("\n".join(raw.lines), languages)
    return [Cue(raw.start_s, raw.end_s, speaker, text) for speaker, text in spans]


def _spans(body: str, languages: set[str]) -> list[tuple[str | None, str]]:
    """(speaker, words) of each voice span in a cue's text, in order; adds `<lang>` tags seen.

    As WebVTT reads cue text: `<v Name>` opens a voice that lasts to its `</v>` or the end of
    the cue, and voices nest; other tags are dropped but not their text; an unclosed `<` hides
    the rest. Text outside every voice has no speaker; neighbouring spans of one voice join.
    """
    voices: list[str] = []
    spans: list[tuple[str | None, list[str]]] = [(None, [])]
    pos = 0
    while pos < len(body):
        lt = body.find("<", pos)
        if lt < 0:
            spans[-1][1].append(body[pos:])
            break
        spans[-1][1].append(body[pos:lt])
        gt = body.find(">", lt + 1)
        tag = body[lt + 1 :] if gt < 0 else body[lt + 1 : gt]
        pos = len(body) if gt < 0 else gt + 1
        parts = [] if tag[:1].isspace() else tag.split(maxsplit=1)  # `< v>` has no name
        name = parts[0].split(".", 1)[0] if parts else ""
        annotation = parts[1] if len(parts) > 1 else ""
        if name == "v":
            voices.append(_plain(annotation))
        elif name == "/v" and voices:
            voices.pop()
        elif name == "lang" and annotation.split():
            languages.add(annotation.split()[0])
        speaker = voices[-1] if voices and voices[-1] else None
        if speaker != spans[-1][0]:
            spans.append((speaker, []))
    out: list[tuple[str | None, list[str]]] = []
    for speaker, pieces in spans:
        words = _plain("".join(pieces))
        if not words:
            continue
        if out and out[-1][0] == speaker:
            out[-1][1].append(words)
        else:
            out.append((speaker, [words]))
    return [(speaker, " ".join(words)) for speaker, words in out]


def _plain(fragment: str) -> str:
    """Entities decoded (&amp; &lt; &nbsp; &lrm; numeric ...) and whitespace collapsed."""
    return " ".join(_REFERENCE.sub(_reference, fragment).split())


def _reference(match: re.Match[str]) -> str:
    ref = match.group(0)
    if ref.startswith("&#"):
        hexadecimal = ref[2:3] in ("x", "X")
        digits = ref[3 if hexadecimal else 2 :].rstrip(";").lstrip("0") or "0"
        # Past U+10FFFF, so U+FFFD as HTML says; int() of thousands of digits is slow, and
        # refused past 4,300 (ValueError), which `html.unescape` would let escape.
        if len(digits) > 8:
            return "\ufffd"
        ref = f"&#{'x' if hexadecimal else ''}{digits};"
    return html.unescape(ref)


def _skip_blank(rows: list[str], i: int) -> int:
    while i < len(rows) and not rows[i].strip():
        i += 1
    return i


def _is_signature(row: str) -> bool:
    row = row.rstrip()
    return row == "WEBVTT" or row.startswith(("WEBVTT ", "WEBVTT\t"))
