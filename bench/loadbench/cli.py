"""The command line of bench/load.py: flags in, an exit code out."""

from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .httpx_driver import drive
from .scenarios import SCENARIOS

DESCRIPTION = "Load benchmark: the running service, seeded with 10,000 referrals, under wrk (or httpx)."
LEVELS = (1, 8, 32, 64)
KEPT_ENV = "CASEBRIDGE_BENCH_POSTGRES_URL"


@dataclass(frozen=True)
class Options:
    """One run, as its flags describe it."""

    db: str
    pg_url: str | None
    workers: int
    referrals: int
    duration: float
    warmup: float
    max_requests: int
    levels: list[int]
    scenarios: list[str]
    driver: str
    seed: int
    output: Path | None
    keep: bool
    data_dir: Path | None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument(
        "--pg-url",
        default=os.environ.get(KEPT_ENV),
        help="A scratch PostgreSQL database: its public schema is dropped and rebuilt.",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--referrals", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=5.0, help="Seconds per scenario and concurrency.")
    p.add_argument("--warmup", type=float, default=1.0, help="Unmeasured seconds before each scenario.")
    p.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="Upper bound on requests per scenario and concurrency.",
    )
    p.add_argument("--concurrency", default=",".join(map(str, LEVELS)))
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--driver", choices=("auto", "wrk", "httpx"), default="auto")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--output", type=Path, help="Also write the JSON document here.")
    p.add_argument("--keep", action="store_true", help="Keep the data directory (SQLite file, keyring).")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="Use (and keep) this data directory; a database seeded there by an earlier "
        "run is reused as it is (for profiling; figures come from fresh runs).",
    )
    p.add_argument("--drive", help=argparse.SUPPRESS)
    return p


def options_of(p: argparse.ArgumentParser, args: argparse.Namespace) -> Options:
    """The flags checked and resolved (`--driver auto` to what is installed)."""
    driver = ("wrk" if shutil.which("wrk") else "httpx") if args.driver == "auto" else args.driver
    levels = [int(c) for c in args.concurrency.split(",") if c]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.db == "postgres" and not args.pg_url:
        p.error("--db postgres needs --pg-url (a scratch database; its schema is dropped)")
    return Options(
        db=args.db,
        pg_url=args.pg_url,
        workers=args.workers,
        referrals=args.referrals,
        duration=args.duration,
        warmup=args.warmup,
        max_requests=args.max_requests,
        levels=levels,
        scenarios=scenarios,
        driver=driver,
        seed=args.seed,
        output=args.output,
        keep=args.keep,
        data_dir=args.data_dir,
    )


def clear_service_env() -> None:
    for name in [k for k in os.environ if k.startswith("CASEBRIDGE_") and k != KEPT_ENV]:
        del os.environ[name]  # the run is described by its flags alone


def main() -> int:
    p = parser()
    args = p.parse_args()
    if args.drive:
        drive(args.drive)
        return 0
    clear_service_env()
    options = options_of(p, args)
    # Imported only now: the service's settings must not see the caller's CASEBRIDGE_* variables,
    # and the driver process (--drive) has no use for the service's packages.
    from .benchmark import benchmark

    return benchmark(options)
