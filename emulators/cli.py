"""`ingest emulator graph|salesforce ...`: picks the emulator and hands it the rest of the flags."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

KINDS = ("graph", "salesforce")


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(
            "usage: ingest emulator graph|salesforce --port P [--scenario FILE] [--db FILE]"
            " [--ca-dir DIR] [fault flags]  (ingest emulator KIND --help for all flags)"
        )
        return 0 if args else 2
    if args[0] not in KINDS:
        print(f"ingest emulator: unknown emulator {args[0]!r}; choose graph or salesforce",
              file=sys.stderr)  # fmt: skip
        return 2
    module = importlib.import_module(f"emulators.{args[0]}.cli")
    return int(module.main(args[1:]))
