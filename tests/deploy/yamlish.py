"""Reads the small YAML subset that deploy/docker/compose.yaml is written in, and refuses the rest.

PyYAML is not a dependency of the project, and one file does not justify adding it. The
subset: block mappings, block sequences of scalars, flow sequences written as JSON, and
plain, single- or double-quoted scalars, with `#` comments. Anything else (anchors, aliases,
merge keys, block scalars, flow mappings, tabs, several documents) raises ValueError, so a
compose file that outgrows the subset fails its tests instead of being misread.
"""

from __future__ import annotations

import json
import re
from typing import Any

_INT = re.compile(r"-?\d+")
_KEY = re.compile(r"""(?P<key>[A-Za-z0-9_.\-]+|"[^"]*"|'[^']*'):(?:\s+(?P<value>.*))?$""")
_REFUSED_STARTS = ("&", "*", "|", ">", "{", "!", "<<", "---", "%")


def _strip_comment(line: str) -> str:
    """The line without a `#` comment; a `#` inside quotes is text."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text: str, lineno: int) -> Any:
    if text.startswith(_REFUSED_STARTS) or text.startswith("- "):
        raise ValueError(f"line {lineno}: outside the subset: {text!r}")
    if text.startswith(("[", '"')):
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise ValueError(f"line {lineno}: unterminated quote")
        return text[1:-1].replace("''", "'")
    if _INT.fullmatch(text):
        return int(text)
    return {"true": True, "false": False, "null": None, "~": None}.get(text, text)


def _key(text: str) -> str:
    return text[1:-1] if text[:1] in "\"'" else text


def loads(source: str) -> Any:
    """The document as dicts, lists and scalars."""
    lines: list[tuple[int, int, str]] = []  # (line number, indent, content)
    for lineno, raw in enumerate(source.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"line {lineno}: tab in indentation")
        content = _strip_comment(raw)
        if content.strip():
            lines.append((lineno, len(content) - len(content.lstrip()), content.strip()))
    value, end = _block(lines, 0, 0)
    if end != len(lines):
        raise ValueError(f"line {lines[end][0]}: indentation does not fit the document")
    return value


def _block(lines: list[tuple[int, int, str]], start: int, indent: int) -> tuple[Any, int]:
    if start >= len(lines) or lines[start][1] != indent:
        raise ValueError("an empty or mis-indented block")
    if lines[start][2].startswith("- "):
        return _sequence(lines, start, indent)
    return _mapping(lines, start, indent)


def _sequence(lines: list[tuple[int, int, str]], i: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while i < len(lines) and lines[i][1] == indent and lines[i][2].startswith("- "):
        lineno, _, content = lines[i]
        item = content[2:].strip()
        if _KEY.match(item):
            raise ValueError(f"line {lineno}: mappings inside sequences are outside the subset")
        out.append(_scalar(item, lineno))
        i += 1
    return out, i


def _mapping(lines: list[tuple[int, int, str]], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines) and lines[i][1] == indent:
        lineno, _, content = lines[i]
        match = _KEY.match(content)
        if match is None:
            raise ValueError(f"line {lineno}: expected `key: value`, got {content!r}")
        key = _key(match["key"])
        if key in out:
            raise ValueError(f"line {lineno}: duplicate key {key!r}")
        i += 1
        if match["value"] is not None:
            out[key] = _scalar(match["value"].strip(), lineno)
        elif i < len(lines) and lines[i][1] > indent:
            out[key], i = _block(lines, i, lines[i][1])
        else:
            out[key] = None  # `key:` alone, as a named volume with default options
    if i < len(lines) and lines[i][1] > indent:
        raise ValueError(f"line {lines[i][0]}: unexpected indentation")
    return out, i
