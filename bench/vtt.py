"""WebVTT parsing speed: a long Teams transcript and hostile 1 MB inputs, in MB/s."""

from __future__ import annotations

import time

from core.exceptions import BadInput
from workers.vtt import parse

SIZE = 1024 * 1024
HEAD = "WEBVTT\n\n0:0:0.0 --> 0:0:1.0\n"


def teams(cues: int) -> str:
    lines = ["WEBVTT", ""]
    for i in range(cues):
        lines += [f"{i}/{i}-0", f"0:{i // 60 % 60}:{i % 60}.0 --> 0:{i // 60 % 60}:{i % 60}.900",
                  f"<v Speaker {i % 4}>Words of cue {i}, and a question?</v>", ""]  # fmt: skip
    return "\n".join(lines)


CASES = {
    "teams 20k cues": teams(20_000),
    "unclosed voices": HEAD + "<v " * (SIZE // 3),
    "open brackets": HEAD + "<" * SIZE,
    "references": HEAD + "&a" * (SIZE // 2),
    "cues": "WEBVTT\n\n" + "0:0:0.0 --> 0:0:1.0\n<v A>x\n\n" * (SIZE // 28),
}


def main() -> None:
    print("vtt parse: input, size, seconds, MB/s")
    for name, text in CASES.items():
        began = time.perf_counter()
        try:
            parsed = parse(text)
            parsed.text_for_salesforce()
        except BadInput:
            pass
        took = time.perf_counter() - began
        size = len(text.encode()) / SIZE
        print(f"  {name:<18} {size:6.2f} MB  {took:7.3f} s  {size / took:8.1f} MB/s")


if __name__ == "__main__":
    main()
