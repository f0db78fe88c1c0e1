"""Helpers for disclosure-log tests: events, raw database access, tampering, the CLI."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, text
from typer.testing import CliRunner

from app.audit import merkle, store
from app.audit.leaf import ROW_COLUMNS, leaf_bytes_many
from app.audit.service import AuditEvent
from app.db import make_engine, transaction
from app.state import AppState

SUBJECT = "sub_yasmin0001"
OTHER_SUBJECT = "sub_omar000002"
APPEND_ONLY = ("audit_entries", "audit_nodes", "audit_checkpoints")


def load_reference() -> ModuleType:
    """The independent RFC 9162 reference (tests/audit/rfc9162_reference.py)."""
    path = Path(__file__).with_name("rfc9162_reference.py")
    spec = importlib.util.spec_from_file_location("rfc9162_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(**changes: Any) -> AuditEvent:
    """A disclosure of a referral to the coordinator, with any field changed."""
    values: dict[str, Any] = {
        "event_type": "disclosure",
        "actor_agency": "city-municipality",
        "recipient_agency": "city-municipality",
        "purpose": "safeguarding_assessment",
        "decision": "permit",
        "agreement_id": "demo-city",
        "rule_id": "coordinator-full",
        "subject_id": SUBJECT,
        "details": {
            "record_ids": ["ref_0001"],
            "fields": ["concerns", "risk_level", "subject.district"],
            "legal_basis": "public_task",
            "retention": "P6Y after closed",
            "justification": "weekly case review",
            "client_id": "municipality-coordinator",
            "request_id": "req-1",
        },
    }
    values.update(changes)
    return AuditEvent(**values)


def fill(state: AppState, count: int, **changes: Any) -> list[int]:
    """Append ``count`` events, each in its own transaction."""
    seqs = []
    for i in range(count):
        values = {"details": {**event().details, "record_ids": [f"ref_{i:04d}"]}, **changes}
        with transaction(state.sessions) as session:
            seqs.append(state.audit.append(session, event(**values)))
    return seqs


def sign(state: AppState) -> str:
    """Sign a checkpoint of the log as it is now; returns the note."""
    from app.audit.checkpoints import sign_if_grown

    with transaction(state.sessions) as session:
        return sign_if_grown(session.connection(), state.audit.signer).note


def verifier_keys(state: AppState) -> str:
    return "".join(f"{k}\n" for k in state.audit.signer.verifier_keys())


# -- the attacker: direct database access --------------------------------------------------


@contextmanager
def attacker(database_url: str) -> Iterator[Connection]:
    """A connection with DBA rights: on PostgreSQL the append-only triggers are disabled."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                for table in APPEND_ONLY:
                    conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
            yield conn
            if postgres:
                for table in APPEND_ONLY:
                    conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"))
    finally:
        engine.dispose()


def row(conn: Connection, seq: int) -> dict[str, Any]:
    """Every stored column of one entry."""
    found = conn.execute(text("SELECT * FROM audit_entries WHERE seq = :seq"), {"seq": seq})
    return dict(found.mappings().one())


def set_columns(conn: Connection, seq: int, values: Mapping[str, Any]) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)  # our own column names
    statement = f"UPDATE audit_entries SET {assignments} WHERE seq = :seq"  # noqa: S608
    conn.execute(text(statement), {**values, "seq": seq})


def flip_byte(value: bytes, at: int) -> bytes:
    out = bytearray(value)
    out[at] ^= 0x01
    return bytes(out)


def rebuild_after(conn: Connection, first: int) -> None:
    """Recompute every hash from ``first`` on (leaves, chain, nodes, head) as a forger would."""
    rows = [
        tuple(r)
        for r in conn.execute(
            text(f"SELECT {', '.join(ROW_COLUMNS)} FROM audit_entries ORDER BY seq")  # noqa: S608
        )
    ]
    prev = merkle.leaf_hash(leaf_bytes_many([rows[first - 1]])[0]) if first else bytes(32)
    hashes = [merkle.leaf_hash(b) for b in leaf_bytes_many(rows[:first])]
    for r in rows[first:]:
        fixed = (*r[:13], prev)
        prev = merkle.leaf_hash(leaf_bytes_many([fixed])[0])
        hashes.append(prev)
        set_columns(conn, r[0], {"prev_hash": fixed[13], "leaf_hash": prev})
    memory = merkle.MemoryNodeStore()
    memory.extend_leaf_hashes(hashes)
    conn.execute(text("DELETE FROM audit_nodes"))
    for level in range(1, len(hashes).bit_length()):
        for index in range(len(hashes) >> level):
            conn.execute(
                text("INSERT INTO audit_nodes (level, node_index, hash) VALUES (:l, :i, :h)"),
                {"l": level, "i": index, "h": memory.get_node((level, index))},
            )
    peaks = b"".join(memory.get_node(key) for key in store.peak_keys(len(hashes)))
    conn.execute(text("UPDATE audit_head SET last_hash = :h, peaks = :p"), {"h": prev, "p": peaks})


# -- the command line ----------------------------------------------------------------------

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    from app.cli import cli as app_cli

    result = runner.invoke(app_cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def append_in_process(args: tuple[str, str, str, int]) -> list[int]:
    """Child process body: open the log from the keyring file and append, one tx per entry."""
    from app.bootstrap import build_state
    from app.config import Settings

    url, data_dir, keyring_path, count = args
    settings = Settings(
        env="dev",  # type: ignore[arg-type]
        data_dir=Path(data_dir),
        database_url=url,
        keyring_path=Path(keyring_path),
        auto_migrate=False,
        seed_demo=False,
    )
    state = build_state(settings)
    try:
        return fill(state, count)
    finally:
        state.engine.dispose()
