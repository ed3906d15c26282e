"""`ingest emulator graph ...`: run the Graph emulator for a scenario until SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from emulators.graph.faults import GraphFaults
from emulators.graph.options import GraphOptions


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ingest emulator graph",
        description="A local Microsoft Graph + Entra ID emulator over HTTPS (DESIGN §7).",
    )
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--scenario", type=Path, help="scenario JSON (default: the built-in one)")
    p.add_argument(
        "--db", type=Path, help="accepted for symmetry; the Graph emulator keeps state in memory"
    )
    p.add_argument("--ca-dir", type=Path, help="CA directory (default: under the user's cache)")
    p.add_argument(
        "--client-certificate", type=Path, help="PEM certificate accepted for client assertions"
    )
    f = p.add_argument_group("faults (also POST /_emulator/faults)")
    f.add_argument("--token-lifetime", type=int, default=3600, metavar="S")
    f.add_argument("--latency-ms", type=int, default=0, metavar="N")
    f.add_argument("--rate-429", type=float, default=0.0, metavar="R")
    f.add_argument("--retry-after", type=int, default=1, metavar="S")
    f.add_argument("--rate-503", type=float, default=0.0, metavar="R")
    f.add_argument("--duplicate-rate", type=float, default=0.0, metavar="R")
    f.add_argument("--drop-rate", type=float, default=0.0, metavar="R")
    f.add_argument("--delay-s", type=float, default=0.0, metavar="S")
    f.add_argument("--out-of-order", action="store_true")
    f.add_argument("--seed", type=int, default=None)
    t = p.add_argument_group("timings")
    t.add_argument("--updated-delay", type=float, default=2.0, metavar="S")
    t.add_argument("--validation-timeout", type=float, default=10.0, metavar="S")
    t.add_argument("--delivery-timeout", type=float, default=3.0, metavar="S")
    t.add_argument("--retry-base", type=float, default=1.0, metavar="S")
    t.add_argument("--retry-attempts", type=int, default=5, metavar="N")
    t.add_argument(
        "--reauthorize-before",
        type=float,
        default=None,
        metavar="S",
        help="send reauthorizationRequired this long before a subscription expires",
    )
    t.add_argument("--lifecycle-check", type=float, default=30.0, metavar="S")
    return p


def default_ca_dir() -> Path:
    """`$XDG_CACHE_HOME/teams-eci-ingest/ca` (or ~/.cache/...), else a temp directory."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    candidate = cache / "teams-eci-ingest" / "ca"
    try:
        candidate.mkdir(parents=True, exist_ok=True)
        if os.access(candidate, os.W_OK):
            return candidate
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "teams-eci-ingest-ca"


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    from emulators import scenario as scenarios
    from emulators.graph.app import create_app
    from emulators.graph.clock import Clock
    from emulators.graph.world import World
    from emulators.serve import run

    try:
        faults = GraphFaults()
        faults.update({
            "latency_ms": args.latency_ms, "rate_429": args.rate_429,
            "retry_after_s": args.retry_after, "rate_503": args.rate_503, "seed": args.seed,
            "duplicate_rate": args.duplicate_rate, "drop_rate": args.drop_rate,
            "delay_s": args.delay_s, "out_of_order": args.out_of_order,
            "token_lifetime_s": args.token_lifetime,
        })  # fmt: skip
        scenario = scenarios.load(args.scenario)
    except (ValueError, OSError) as exc:
        print(f"ingest emulator graph: {exc}", file=sys.stderr)
        return 2
    if args.client_certificate is not None and not args.client_certificate.is_file():
        print(
            f"ingest emulator graph: --client-certificate {args.client_certificate} is not a file",
            file=sys.stderr,
        )
        return 2
    options = GraphOptions(
        client_certificate=args.client_certificate,
        validation_timeout_s=args.validation_timeout,
        delivery_timeout_s=args.delivery_timeout,
        retry_base_s=args.retry_base,
        retry_attempts=args.retry_attempts,
        updated_delay_s=args.updated_delay,
        reauthorize_before_s=args.reauthorize_before,
        lifecycle_check_s=args.lifecycle_check,
    )
    ca_dir = args.ca_dir or default_ca_dir()
    print(
        f"graph emulator: CA in {ca_dir} (INGEST_CA_BUNDLE={ca_dir / 'ca.pem'}); tenant "
        f"{scenario.tenant.id}",
        file=sys.stderr,
        flush=True,
    )
    clock = Clock()
    world = World(scenario, clock=clock)
    app = create_app(world, clock=clock, faults=faults, options=options, ca_dir=ca_dir)
    return run(app, args.host, args.port, ca_dir, "graph")
