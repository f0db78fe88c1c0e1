"""After the runs: every disclosure response matched by its log entry, and the log verified."""

from __future__ import annotations

import json
import subprocess
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Connection

from app.audit.models import AuditEntry
from app.db import make_engine

from . import ROOT
from .data import READER, READER_AGENCY
from .runs import Run
from .server import casebridge, server_env


def disclosure_proof(url: str, runs: list[Run]) -> dict[str, Any]:
    """Every 200 that carried case data has exactly one log entry, under full concurrency."""
    measured = [r for r in runs if r.scenario == "disclosure"]
    if not measured:
        return {"skipped": "the disclosure scenario did not run"}
    since, until = min(r.started_at for r in measured), max(r.ended_at for r in measured)
    window = (AuditEntry.time_us >= int(since * 1e6), AuditEntry.time_us <= int(until * 1e6))
    engine = make_engine(url)
    with engine.connect() as conn:
        entries = count_entries(conn, AuditEntry.event_type.in_(("disclosure", "access")), *window)
        denials = count_entries(conn, AuditEntry.event_type == "denial", *window)
    engine.dispose()
    responses = sum(r.case_responses for r in measured)
    return {
        "client": READER,
        "recipient_agency": READER_AGENCY,
        "window_utc": [
            datetime.fromtimestamp(since, UTC).isoformat(),
            datetime.fromtimestamp(until, UTC).isoformat(),
        ],
        "requests_sent": sum(r.sent for r in measured),
        "responses_200_with_case_data": responses,
        "log_entries_disclosure_or_access": entries,
        "denials_logged": denials,
        "difference": responses - entries,
        "nothing_in_flight_at_stop": all(r.complete for r in measured),
    }


def count_entries(conn: Connection, *where: ColumnElement[bool]) -> int:
    """Log entries with the reading agency as recipient that match `where`."""
    query = select(func.count()).select_from(AuditEntry).where(AuditEntry.recipient_agency == READER_AGENCY, *where)
    return int(conn.scalar(query) or 0)


def audit_verify(data_dir: Path, url: str) -> dict[str, Any]:
    """`casebridge audit verify --json` against the database the server wrote."""
    started = time.perf_counter()
    out = subprocess.run(  # noqa: S603
        [str(casebridge()), "audit", "verify", "--json"],
        cwd=ROOT,
        env=server_env(data_dir, url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    report: Any = None
    for line in out.stdout.splitlines():
        with suppress(ValueError):
            report = json.loads(line)
    return {
        "exit_code": out.returncode,
        "report": report,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "stderr": out.stderr.strip()[-500:] or None,
    }
