"""Export of the log: JSON lines an offline verifier checks, or a FHIR R4 AuditEvent Bundle (app/audit/fhir.py)."""

# JSON lines: one entry per line, in sequence order, with its stored columns (details as the
# base64 ciphertext), prev_hash, leaf_hash and "leaf", the base64 of the exact leaf bytes.
# With decrypt, "details_decrypted" is added for auditors; the file then holds case metadata
# (record ids, field names, justifications) and must be handled as such.

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from app.audit import fhir, store
from app.audit.leaf import ROW_COLUMNS, from_us, leaf_bytes
from app.audit.queries import view
from app.audit.sealing import AuditSealer
from app.db import utcnow

BATCH: Final = 2000
_B64 = ("details", "prev_hash", "leaf_hash")


def iter_chunks(
    sessions: sessionmaker[Session], stop: int, *, start: int = 0, batch: int = BATCH
) -> Iterator[list[tuple[Any, ...]]]:
    """Stored rows (ROW_COLUMNS + leaf_hash) with start <= seq < stop, in chunks, each read in
    its own short transaction (a long export never holds SQLite's write lock)."""
    seq = start
    while seq < stop:
        with sessions() as session:
            rows = store.fetch_rows(session.connection(), seq, stop, batch)
            session.rollback()
        if not rows:
            return
        yield rows
        seq = rows[-1][0] + 1


def iter_rows(
    sessions: sessionmaker[Session], stop: int, *, start: int = 0, batch: int = BATCH
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``iter_chunks`` one at a time."""
    for rows in iter_chunks(sessions, stop, start=start, batch=batch):
        yield from rows


def _b64(value: bytes) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def jsonl_record(row: tuple[Any, ...], sealer: AuditSealer | None = None) -> dict[str, Any]:
    """One export line's object; ``sealer`` adds the decrypted details."""
    record: dict[str, Any] = dict(zip((*ROW_COLUMNS, "leaf_hash"), row, strict=True))
    record["time"] = from_us(record["time_us"]).isoformat().replace("+00:00", "Z")
    for name in _B64:
        record[name] = _b64(record[name])
    record["leaf"] = _b64(leaf_bytes(row[:14]))
    if sealer is not None:
        record["details_decrypted"] = view(sealer, row).details
    return record


def jsonl_lines(
    rows: Iterator[tuple[Any, ...]], sealer: AuditSealer | None = None
) -> Iterator[bytes]:
    """The JSON-lines export, one encoded line at a time."""
    for row in rows:
        yield (json.dumps(jsonl_record(row, sealer), separators=(",", ":")) + "\n").encode()


def fhir_bundle(
    rows: Iterator[tuple[Any, ...]], sealer: AuditSealer, origin: str, *, decrypt: bool
) -> Iterator[bytes]:
    """A FHIR R4 Bundle (type collection) of AuditEvent resources, streamed.

    Valid FHIR R4/R4B: an empty log gives a Bundle without ``entry`` (FHIR forbids empty arrays).
    """
    head = {"resourceType": "Bundle", "type": "collection", "timestamp": fhir.instant(utcnow())}
    opening = json.dumps(head, separators=(",", ":"))[:-1].encode()
    first = True
    for row in rows:
        entry = view(sealer, row)
        resource = fhir.audit_event(entry, origin, bytes(row[12]), decrypt=decrypt)
        item = {
            "fullUrl": f"urn:uuid:{fhir.resource_uuid(origin, entry.seq)}",
            "resource": resource,
        }
        yield (opening + b',"entry":[' if first else b",") + json.dumps(item, separators=(",", ":")).encode()
        first = False
    yield opening + b"}\n" if first else b"]}\n"
