"""`ingest demo`: the whole pipeline on one machine (not built yet in this version)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    print(
        "ingest demo: not built yet. The receiver, the worker and the emulators run today;"
        " the end-to-end demo arrives with the pipeline and Salesforce stages.",
        file=sys.stderr,
    )
    return 1
