"""One benchmark run, start to end: seed, measure, prove, verify, print the document."""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import log
from .cli import Options
from .measure import Plan, measure
from .proof import audit_verify, disclosure_proof
from .report import document, machine
from .scenarios import Scenarios
from .seed import Seeded, seeded_database
from .server import Server


def benchmark(options: Options) -> int:
    """Exit code 1 when the concurrency proof or the log verification fails."""
    rng = random.Random(options.seed)  # noqa: S311 - benchmark data
    run_id = f"{int(time.time())}"
    with data_directory(options.data_dir, options.keep) as data_dir:
        url = database_url(options, data_dir)
        seeded, reused = seeded_database(data_dir, options.db, url, options.referrals, rng)
        server = Server(data_dir, url, options.workers)
        scenarios = Scenarios(server.base, demo_credentials(data_dir), seeded.referral_ids, rng, run_id)
        measured = measure(plan_of(options), server, scenarios, data_dir / "load")
        proof = disclosure_proof(url, measured.runs)
        log("verifying the disclosure log")
        verify = audit_verify(data_dir, url)
        report = document(
            setup(options, seeded, reused),
            machine(options.db, url, options.driver),
            options.scenarios,
            measured.runs,
            measured.rss,
            proof,
            verify,
        )
        emit(report, options.output)
        ok = proof.get("difference") == 0 and verify["exit_code"] == 0
        return 0 if ok else 1


@contextmanager
def data_directory(given: Path | None, keep: bool, prefix: str = "casebridge-load-") -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def database_url(options: Options, data_dir: Path) -> str:
    if options.db == "postgres" and options.pg_url:
        return options.pg_url
    return f"sqlite:///{data_dir / 'casebridge.db'}"


def demo_credentials(data_dir: Path) -> dict[str, str]:
    """The demo clients' secrets, written by the demo seeding."""
    clients = json.loads((data_dir / "demo-clients.json").read_text())
    return {c["client_id"]: c["client_secret"] for c in clients}


def plan_of(options: Options) -> Plan:
    return Plan(
        options.scenarios,
        options.levels,
        options.duration,
        options.warmup,
        options.max_requests,
        options.driver,
    )


def setup(options: Options, seeded: Seeded, reused: bool) -> dict[str, Any]:
    return {
        "db": options.db,
        "workers": options.workers,
        "duration_s": options.duration,
        "server": "casebridge serve",
        "warmup_s": options.warmup,
        "concurrency": options.levels,
        "max_requests": options.max_requests,
        "seeded": {k: v for k, v in asdict(seeded).items() if k != "referral_ids"},
        "reused_seeded_database": reused,
    }


def emit(report: dict[str, Any], output: Path | None) -> None:
    text_out = json.dumps(report, indent=2)
    sys.stdout.write(text_out + "\n")
    if output:
        output.write_text(text_out + "\n")
