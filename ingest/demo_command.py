"""`ingest demo`: the whole pipeline on one machine, on the emulators (DESIGN §7)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

# Only `ingest demo` imports this module (ingest/cli.py loads commands by name), so only the
# demo, and `ingest emulator`, load the emulators.
from emulators.scenario import ScenarioError, load
from ingest.demo.report import document, table
from ingest.demo.runner import Demo, DemoOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest demo", description="The whole pipeline on local emulators."
    )
    parser.add_argument("--scenario", type=Path, help="scenario file (default: the built-in one)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument(
        "--salesforce-dump",
        type=Path,
        metavar="FILE",
        help="write every Salesforce record to FILE as JSON",
    )
    parser.add_argument(
        "--chaos",
        action="store_true",
        help="faults, duplicates and a killed worker; same records at the end",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for every meeting to settle (default 150; 240 with --chaos, "
        "whose faults cost retries)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the demo's logs and files")
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        scenario = load(args.scenario)
    except (OSError, ScenarioError) as exc:
        print(f"ingest demo: scenario: {exc}", file=sys.stderr)
        return 2

    def progress(line: str) -> None:
        print(f"demo: {line}", file=sys.stderr, flush=True)

    options = DemoOptions(
        scenario=scenario,
        scenario_path=args.scenario,
        chaos=args.chaos,
        timeout_s=args.timeout if args.timeout is not None else (240.0 if args.chaos else 150.0),
        keep_dir=args.keep,
    )
    demo = Demo(options, progress)
    try:
        demo.start()
        run = demo.play_and_wait()
    except (RuntimeError, OSError) as exc:
        print(f"ingest demo: {exc}", file=sys.stderr)
        demo.options.keep_dir = True
        return 1
    finally:
        demo.close()
    doc = document(scenario, run)
    if args.salesforce_dump:
        args.salesforce_dump.write_text(json.dumps(run.salesforce_dump, indent=1, sort_keys=True))
    print(json.dumps(doc) if args.json else table(scenario, run, doc))
    ok = run.settled and doc["counts"]["failed"] == 0
    return 0 if ok else 1
