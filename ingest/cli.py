"""The `ingest` command: parses arguments, builds settings, and hands over to one module.

Only this module reads the environment. Heavy modules are imported inside each command so
that `ingest serve` never loads the Graph SDK.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from core.exceptions import ConfigurationError, IngestError
from core.settings import Settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits with status 2 and one line on bad usage (its default too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"ingest: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ingest", description="Teams meeting transcripts into Salesforce.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="run the receiver (Procfile web)")
    serve.add_argument("--host", default=None, help="address to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port (default $PORT or 8000)")

    worker = sub.add_parser("worker", help="run an RQ worker (Procfile worker)")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")

    sub.add_parser("clock", help="periodic work (Procfile clock)")

    subs = sub.add_parser("subscriptions", help="manage Graph subscriptions")
    subs.add_argument("action", choices=["ensure", "list", "renew", "delete"])
    subs.add_argument("--json", action="store_true", help="print one JSON document")

    users = sub.add_parser("users", help="the ECI user registry")
    users.add_argument("action", choices=["add", "remove", "list"])
    users.add_argument("email", nargs="?", help="the user's e-mail (add, remove)")
    users.add_argument("--json", action="store_true", help="print one JSON document")

    explain = sub.add_parser("explain", help="what happened to a meeting and why")
    explain.add_argument("meeting_id")
    explain.add_argument("--json", action="store_true", help="print one JSON document")

    status = sub.add_parser("status", help="queues, failures, subscriptions, ledger counts")
    status.add_argument("--json", action="store_true", help="print one JSON document")

    backfill = sub.add_parser("backfill", help="enqueue past meetings")
    backfill.add_argument("--since", required=True, metavar="ISO_DATE")

    dlq = sub.add_parser("dlq", help="failed jobs: why each failed; run them again")
    dlq.add_argument("action", choices=["list", "requeue"])
    dlq.add_argument("job_id", nargs="?", metavar="JOB_ID", help="the job to requeue")
    dlq.add_argument("--all", action="store_true", help="requeue every failed job")
    dlq.add_argument("--json", action="store_true", help="print one JSON document")

    doctor = sub.add_parser("doctor", help="check a live setup end to end; name each fix")
    doctor.add_argument("--json", action="store_true", help="print one JSON document")

    emulator = sub.add_parser("emulator", help="run a Graph or Salesforce emulator", add_help=False)
    emulator.add_argument("rest", nargs=argparse.REMAINDER)

    demo = sub.add_parser("demo", help="the whole pipeline on one machine", add_help=False)
    demo.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


# Each command lives in its own module with `run(args, settings) -> int`.
_COMMANDS = {
    "serve": "ingest.commands.serve",
    "worker": "workers.worker",
    "status": "ingest.status",
    "users": "ingest.users",
    "subscriptions": "ingest.subscriptions",
    "explain": "ingest.explain",
    "clock": "ingest.clock",
    "backfill": "ingest.backfill",
    "dlq": "ingest.dlq",
    "doctor": "ingest.doctor",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("emulator", "demo"):
        # These parse their own flags; the emulators are imported only here.
        module = importlib.import_module(f"ingest.{argv[0]}_command")
        return int(module.main(argv[1:]))
    args = build_parser().parse_args(argv)
    target = _COMMANDS.get(args.command)
    if target is None:
        print(f"ingest: '{args.command}' is not built yet", file=sys.stderr)
        return EXIT_FAILURE
    try:
        settings = Settings.from_env()
        module = importlib.import_module(target)
        return int(module.run(args, settings))
    except ConfigurationError as exc:
        print(f"ingest: configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IngestError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
