"""Benchmark the disclosure log: append rate, verification speed, proof and query latency.

Run from the repository root:  .venv/bin/python bench/audit.py  (prints one JSON document).
SQLite always; PostgreSQL too when CASEBRIDGE_BENCH_POSTGRES_URL is set (its schema is
dropped and rebuilt).  --sizes 10000,100000 for a quicker run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from app import migrate  # noqa: E402
from app.audit import export, live, offline, proofs, queries  # noqa: E402
from app.audit.checkpoints import sign_if_grown  # noqa: E402
from app.audit.leaf import leaf_bytes_many  # noqa: E402
from app.audit.queries import EntryFilter  # noqa: E402
from app.audit.service import AuditEvent, AuditLog  # noqa: E402
from app.audit.verify import LogVerifier  # noqa: E402
from app.crypto.envelope import BlindIndex  # noqa: E402
from app.crypto.keyring import Keyring  # noqa: E402
from app.db import make_engine, make_sessionmaker, transaction  # noqa: E402

ORIGIN = "bench.casebridge.example/disclosure-log"
ENTRIES_PER_SUBJECT = 10
CORE_SAMPLE = 200_000  # rows held in memory to time the verifier without the database
AGENCIES = [
    "city-municipality",
    "city-social-services",
    "school-north",
    "school-south",
    "city-health-centre",
    "city-community-police",
    "youth-ngo-bridges",
]
PURPOSES = ["safeguarding_assessment", "intervention_planning", "service_provision"]


def event(rng: random.Random, subjects: int) -> AuditEvent:
    """A realistic disclosure: a referral's fields to another agency, for a stated purpose."""
    actor, recipient = rng.sample(AGENCIES, 2)
    return AuditEvent(
        event_type="disclosure",
        actor_agency=actor,
        recipient_agency=recipient,
        purpose=rng.choice(PURPOSES),
        decision="permit",
        agreement_id="demo-city",
        rule_id="coordinator-full",
        subject_id=f"sub_{rng.randrange(subjects):010d}",
        details={
            "record_ids": [f"ref_{rng.getrandbits(64):016x}"],
            "fields": ["concerns", "risk_level", "subject.age_band", "subject.district", "status"],
            "legal_basis": "public_task",
            "retention": "P6Y after closed",
            "justification": "weekly multi-agency case review",
            "client_id": "municipality-coordinator",
            "request_id": f"{rng.getrandbits(128):032x}",
            "agreement_version": 3,
        },
    )


class Log:
    """One database with a fresh schema and an AuditLog over an in-memory keyring."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        if url.startswith("postgresql"):
            with self.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        migrate.upgrade(self.engine)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        keyring = Keyring.generate()
        self.audit = AuditLog(keyring, BlindIndex(keyring), origin=ORIGIN)
        self.size = 0

    def grow(self, target: int, rng: random.Random, batch: int = 5000) -> float:
        """Bulk-append through AuditLog.append_many until the log holds ``target``; entries/s."""
        started = time.perf_counter()
        added = target - self.size
        while self.size < target:
            count = min(batch, target - self.size)
            events = [event(rng, max(1, target // ENTRIES_PER_SUBJECT)) for _ in range(count)]
            with transaction(self.sessions) as session:
                self.audit.append_many(session, events)
            self.size += count
        rate = added / (time.perf_counter() - started)
        if self.url.startswith("postgresql"):
            # What autovacuum does after a load; without statistics the planner may walk the
            # primary key instead of the subject index.
            with self.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        return rate

    def sign(self) -> str:
        with transaction(self.sessions) as session:
            return sign_if_grown(session.connection(), self.audit.signer).note

    def close(self) -> None:
        self.engine.dispose()


def writers(log: Log, count: int, per_writer: int, *, group: bool) -> float:
    """Appends/s with ``count`` threads, each entry durable before its writer goes on."""
    rng = random.Random(count)  # noqa: S311 - benchmark data
    events = [event(rng, 1000) for _ in range(count * per_writer)]

    def work(mine: list[AuditEvent]) -> None:
        for e in mine:
            if group:
                with log.sessions() as session:
                    log.audit.record(session, e)
            else:
                with transaction(log.sessions) as session:
                    log.audit.append(session, e)

    threads = [
        threading.Thread(target=work, args=(events[i * per_writer : (i + 1) * per_writer],))
        for i in range(count)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.size += len(events)
    return len(events) / (time.perf_counter() - started)


def median_ms(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def latencies(log: Log, rng: random.Random) -> dict[str, float]:
    """Median inclusion/consistency proof and subject-query times over a warm connection."""
    size = log.size
    subjects = max(1, size // ENTRIES_PER_SUBJECT)
    with log.sessions() as session:
        conn = session.connection()
        out = {
            "inclusion_proof_ms": median_ms(
                lambda: proofs.inclusion(conn, rng.randrange(size), size), 200
            ),
            "consistency_proof_ms": median_ms(
                lambda: proofs.consistency(conn, rng.randrange(1, size), size), 200
            ),
            "subject_query_ms": median_ms(
                lambda: queries.search(
                    conn,
                    log.audit.sealer,
                    EntryFilter(subject_id=f"sub_{rng.randrange(subjects):010d}"),
                    after=None,
                    limit=50,
                ),
                200,
            ),
            "subject_access_report_ms": median_ms(
                lambda: queries.recipients(
                    conn, log.audit.sealer, f"sub_{rng.randrange(subjects):010d}"
                ),
                100,
            ),
        }
        session.rollback()
    return out


def verification(log: Log, workdir: Path) -> dict[str, Any]:
    """Verifier speed: core over rows in memory, live from the database, offline from a file."""
    note = log.sign()
    keys = log.audit.signer.verifier_keys()
    rows = list(export.iter_rows(log.sessions, min(log.size, CORE_SAMPLE), batch=20_000))
    leaves = leaf_bytes_many(rows)
    sha = hashlib.sha256
    digest = type(sha()).digest
    started = time.perf_counter()
    list(map(digest, map(sha, leaves)))  # the fastest pure-hashlib loop: the fair baseline
    raw = len(leaves) / (time.perf_counter() - started)
    started = time.perf_counter()
    verifier = LogVerifier([])  # the checkpoint is checked by the end-to-end runs below
    it = iter(rows)
    while chunk := list(islice(it, 10_000)):
        verifier.feed(chunk)
    verifier.finish()
    core = len(rows) / (time.perf_counter() - started)
    report = live.verify_database(log.sessions, log.audit.signer)
    assert report.ok, report.problem
    path = workdir / "export.jsonl"
    started = time.perf_counter()
    with path.open("wb") as fh:
        for line in export.jsonl_lines(export.iter_rows(log.sessions, log.size)):
            fh.write(line)
    export_rate = log.size / (time.perf_counter() - started)
    (workdir / "cp.txt").write_text(note)
    (workdir / "keys.txt").write_text("\n".join(keys) + "\n")
    off = offline.verify_export(path, [workdir / "cp.txt"], workdir / "keys.txt")
    assert off.ok, off.problem
    return {
        "entries": log.size,
        "core_sample_entries": len(rows),
        "mean_leaf_bytes": round(sum(map(len, leaves)) / len(leaves)),
        "raw_sha256_leaves_per_s": round(raw),
        "verify_core_entries_per_s": round(core),
        "verify_core_fraction_of_raw_sha256": round(core / raw, 3),
        "verify_live_entries_per_s": round(report.entries_per_second),
        "verify_live_fraction_of_raw_sha256": round(report.entries_per_second / raw, 3),
        "verify_offline_entries_per_s": round(off.entries_per_second),
        "export_jsonl_entries_per_s": round(export_rate),
    }


def run_backend(url: Callable[[str], str], sizes: list[int], workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    small = Log(url("writers"))
    out["append_1_writer_per_s"] = round(writers(small, 1, 2000, group=False))
    out["append_16_writers_per_s"] = round(writers(small, 16, 250, group=False))
    out["record_1_writer_per_s"] = round(writers(small, 1, 2000, group=True))
    out["record_16_writers_per_s"] = round(writers(small, 16, 500, group=True))
    small.close()
    log = Log(url("big"))
    rng = random.Random(7)  # noqa: S311 - benchmark data
    out["sizes"] = {}
    for size in sizes:
        rate = log.grow(size, rng)
        out["sizes"][str(size)] = {"bulk_append_per_s": round(rate), **latencies(log, rng)}
    out["verification"] = verification(log, workdir)
    first, last = (out["sizes"][str(s)] for s in (sizes[0], sizes[-1]))
    out["growth_first_to_last_size"] = {
        k: round(last[k] / first[k], 2) for k in last if k.endswith("_ms")
    }
    log.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    result: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        result["sqlite"] = run_backend(
            lambda name: f"sqlite:///{workdir / name}.db", sizes, workdir
        )
        pg = os.environ.get("CASEBRIDGE_BENCH_POSTGRES_URL")
        if pg:
            result["postgresql"] = run_backend(lambda _: pg, sizes, workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
