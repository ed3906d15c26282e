"""`ingest emulator graph|salesforce ...`: hands over to the emulators' own command line."""

from __future__ import annotations

import importlib
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    # Imported by name: the product never imports emulators/ except to launch them.
    module = importlib.import_module("emulators.cli")
    return int(module.main(list(argv)))
