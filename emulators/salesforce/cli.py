"""`ingest emulator salesforce ...`: run the Salesforce emulator until SIGTERM."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emulators import scenario
from emulators.salesforce import metadata


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ingest emulator salesforce",
        description="A local Salesforce REST API emulator over HTTPS (DESIGN §7).",
    )
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--scenario", type=Path, help="scenario JSON whose salesforce section seeds")
    p.add_argument("--db", type=Path, help="SQLite file that keeps records across restarts")
    p.add_argument("--ca-dir", type=Path, help="CA directory (default: under the user's cache)")
    p.add_argument("--session-lifetime", type=float, default=7200.0, metavar="S")
    p.add_argument("--jwt-certificate", type=Path, help="PEM certificate for JWT bearer tokens")
    p.add_argument(
        "--metadata",
        type=Path,
        default=metadata.DEFAULT_DIR,
        help="SFDX project with the custom objects (default: deploy/salesforce)",
    )
    p.add_argument("--api-limit", type=int, default=15000, metavar="N", help="DailyApiRequests Max")
    f = p.add_argument_group("faults (also POST /_emulator/faults)")
    f.add_argument("--latency-ms", type=int, default=0, metavar="N")
    f.add_argument("--rate-429", type=float, default=0.0, metavar="R")
    f.add_argument("--retry-after", type=int, default=1, metavar="S")
    f.add_argument("--rate-503", type=float, default=0.0, metavar="R")
    f.add_argument(
        "--request-limit-after",
        type=int,
        default=None,
        metavar="N",
        help="after N API calls answer REQUEST_LIMIT_EXCEEDED ...",
    )
    f.add_argument(
        "--request-limit-burst",
        type=int,
        default=1,
        metavar="N",
        help="... for N calls, then recover",
    )
    f.add_argument("--seed", type=int, default=None)
    return p


def load_seed(path: Path | None) -> dict[str, list[dict[str, Any]]]:
    """The scenario's `salesforce` section (None: the built-in scenario's), as Graph's uses it."""
    return dict(scenario.load(path).salesforce)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    from emulators.graph.cli import default_ca_dir
    from emulators.salesforce.app import Config, SalesforceFaults, create_app
    from emulators.salesforce.oauth import load_public_key
    from emulators.salesforce.seed import SeedError
    from emulators.serve import run

    try:
        faults = SalesforceFaults()
        faults.update(
            {
                "latency_ms": args.latency_ms,
                "rate_429": args.rate_429,
                "retry_after_s": args.retry_after,
                "rate_503": args.rate_503,
                "seed": args.seed,
                "request_limit_after": args.request_limit_after,
                "request_limit_burst": args.request_limit_burst,
            }
        )
        config = Config(
            metadata_dir=args.metadata,
            db=str(args.db) if args.db else None,
            seed=load_seed(args.scenario),
            session_lifetime_s=args.session_lifetime,
            jwt_key=load_public_key(args.jwt_certificate) if args.jwt_certificate else None,
            daily_limit=args.api_limit,
            faults=faults,
        )
        app = create_app(config)
    except (ValueError, OSError, SeedError) as exc:
        print(f"ingest emulator salesforce: {exc}", file=sys.stderr)
        return 2
    ca_dir = args.ca_dir or default_ca_dir()
    print(
        f"salesforce emulator: CA in {ca_dir} (INGEST_CA_BUNDLE={ca_dir / 'ca.pem'})",
        file=sys.stderr,
        flush=True,
    )
    return run(app, args.host, args.port, ca_dir, "salesforce")
