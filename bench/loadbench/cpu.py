"""What a run cost the server: CPU of its processes (and of PostgreSQL's backends) per request, and the
log's mean group-commit batch, read before and after each measured run.

CPU is utime + stime from /proc/<pid>/stat, every thread included; a process born during the run counts
whole. The load driver's own CPU is not counted (it is this process, not the server's).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from .server import process_tree

TICKS = os.sysconf("SC_CLK_TCK")
BATCH = "casebridge_audit_append_batch_size"


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, in seconds (None: it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of proc(5)


def postgres_backends(database_url: str) -> list[int]:
    """The process ids of PostgreSQL's backends connected to the benchmark's database (the server's own
    pg_stat_activity; this connection's backend left out)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalars())
    finally:
        engine.dispose()


def batch_totals(base: str) -> tuple[float, float] | None:
    """(entries, batches) the log has committed so far, summed over workers (None: no metrics)."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    found = {}
    for suffix in ("sum", "count"):
        match = re.search(rf"^{BATCH}_{suffix}\s+([0-9.eE+-]+)$", text, re.MULTILINE)
        if match is None:
            return None
        found[suffix] = float(match.group(1))
    return found["sum"], found["count"]


@dataclass
class Snapshot:
    server: dict[int, float]
    postgres: dict[int, float]
    batches: tuple[float, float] | None


class CpuMeter:
    """Snapshot before a run, `cost(requests)` after it."""

    def __init__(self, root: int, base: str, database_url: str) -> None:
        self.root, self.base = root, base
        on_postgres = make_url(database_url).get_backend_name() == "postgresql"
        self.database_url = database_url if on_postgres else None
        self._before: Snapshot | None = None

    def _snapshot(self) -> Snapshot:
        server = {pid: cpu for pid in process_tree(self.root) if (cpu := cpu_seconds(pid)) is not None}
        backends = postgres_backends(self.database_url) if self.database_url else []
        postgres = {pid: cpu for pid in backends if (cpu := cpu_seconds(pid)) is not None}
        return Snapshot(server, postgres, batch_totals(self.base))

    def start(self) -> None:
        self._before = self._snapshot()

    def cost(self, requests: int) -> dict[str, Any]:
        assert self._before is not None, "start() first"
        before, after = self._before, self._snapshot()

        def spent(then: dict[int, float], now: dict[int, float]) -> float:
            return sum(cpu - then.get(pid, 0.0) for pid, cpu in now.items())

        server_s, postgres_s = spent(before.server, after.server), spent(before.postgres, after.postgres)
        per = 1000 / requests if requests else 0.0
        batch = None
        if before.batches and after.batches and after.batches[1] > before.batches[1]:
            batch = (after.batches[0] - before.batches[0]) / (after.batches[1] - before.batches[1])
        return {
            "server_cpu_s": round(server_s, 2),
            "server_cpu_ms_per_request": round(server_s * per, 3) if requests else None,
            "postgres_cpu_s": round(postgres_s, 2) if self.database_url else None,
            "postgres_cpu_ms_per_request": round(postgres_s * per, 3) if requests and self.database_url else None,
            "audit_batch_mean": round(batch, 2) if batch is not None else None,
        }
