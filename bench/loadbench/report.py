"""The JSON document: the machine, per-run figures, ratios and the issue's targets."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.db import make_engine

from .runs import Run

TARGETS = {
    "disclosure_over_bare_read_min": 0.8,
    "disclosure_over_hello_min": 0.4,
    "disclosure_p99_ms_max_at_32": 50.0,
    "rss_mb_per_worker_max": 200.0,
}
RATIO_LEVEL = 32
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def document(
    setup: dict[str, Any],
    machine_info: dict[str, Any],
    scenarios: list[str],
    runs: list[Run],
    rss: dict[str, Any],
    proof: dict[str, Any],
    verify: dict[str, Any],
) -> dict[str, Any]:
    ratios, verdict = targets(runs, rss, setup["db"])
    return {
        "benchmark": "bench/load.py",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info,
        "setup": setup,
        "scenarios": {
            name: {str(r.connections): scenario_row(r) for r in runs if r.scenario == name} for name in scenarios
        },
        "ratios": ratios,
        "server_rss": rss,
        "concurrency_proof": proof,
        "audit_verify": verify,
        "targets": verdict,
    }


def scenario_row(run: Run) -> dict[str, Any]:
    peak = run.server_rss
    return {
        "requests_per_s": run.requests_per_s,
        "latency_ms": {k: run.latency_ms[k] for k in ("p50", "p95", "p99", "max")},
        "errors": run.errors,
        "requests": run.requests,
        "seconds": run.seconds,
        "statuses": run.statuses,
        "transport_errors": run.transport_errors,
        "sent": run.sent,
        "complete": run.complete,
        "server_rss_mb": {"total": peak.get("total_mb"), "per_worker": peak.get("workers_mb")},
        **run.cost,
    }


def machine(db: str, url: str, driver: str) -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": round(memory_kb() / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "db": database_version(db, url),
        "driver": (wrk_version() if driver == "wrk" else None) or "httpx (async, in a separate process)",
        "load_generator_shares_the_machine": True,
    }


def cpu_model() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor()
    )


def memory_kb() -> int:
    lines = Path("/proc/meminfo").read_text().splitlines()
    return int(next((line.split()[1] for line in lines if line.startswith("MemTotal")), "0"))


def database_version(db: str, url: str) -> str:
    engine = make_engine(url)  # the service's own engine: its pragmas are what the server ran with
    with engine.connect() as conn:
        version = sqlite_version(conn) if db == "sqlite" else postgres_version(conn)
    engine.dispose()
    return version


def sqlite_version(conn: Connection) -> str:
    journal = conn.scalar(text("PRAGMA journal_mode"))
    # Read back, not assumed: app/db.py sets it on every connection (FULL at the time of writing).
    synchronous = SYNCHRONOUS.get(int(conn.scalar(text("PRAGMA synchronous")) or 0), "?")
    return f"SQLite {sqlite3.sqlite_version} (journal_mode={journal}, synchronous={synchronous})"


def postgres_version(conn: Connection) -> str:
    version = str(conn.scalar(text("SELECT version()"))).split(" on ")[0]
    settings = ("synchronous_commit", "max_connections", "shared_buffers")
    return version + " (" + ", ".join(f"{k}={conn.scalar(text(f'SHOW {k}'))}" for k in settings) + ")"


def wrk_version() -> str | None:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)  # noqa: S607
    printed = out.stdout + out.stderr
    return printed.strip().splitlines()[0] if printed else None


def targets(runs: list[Run], rss: dict[str, Any], db: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ratios at RATIO_LEVEL connections, and each target with its value and whether it is met."""
    at = {(r.scenario, r.connections): r for r in runs}
    d, b, h = (at.get((s, RATIO_LEVEL)) for s in ("disclosure", "bare_read", "hello"))
    over_bare = round(d.requests_per_s / b.requests_per_s, 3) if d and b else None
    over_hello = round(d.requests_per_s / h.requests_per_s, 3) if d and h else None
    ratios = {
        f"disclosure_over_bare_read_at_{RATIO_LEVEL}": over_bare,
        f"disclosure_over_hello_at_{RATIO_LEVEL}": over_hello,
    }
    verdict = {
        "disclosure_over_bare_read": at_least(TARGETS["disclosure_over_bare_read_min"], over_bare, f" ({db})"),
        "disclosure_over_hello": at_least(TARGETS["disclosure_over_hello_min"], over_hello),
        "disclosure_p99_ms_at_32": at_most(TARGETS["disclosure_p99_ms_max_at_32"], d.latency_ms["p99"] if d else None),
        "rss_mb_per_worker": at_most(TARGETS["rss_mb_per_worker_max"], rss["peak_worker_mb"]),
    }
    return ratios, verdict


def at_least(limit: float, value: float | None, note: str = "") -> dict[str, Any]:
    return {"target": f">= {limit}{note}", "value": value, "met": None if value is None else value >= limit}


def at_most(limit: float, value: float | None) -> dict[str, Any]:
    return {"target": f"<= {limit}", "value": value, "met": None if value is None else value <= limit}
