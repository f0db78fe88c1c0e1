"""Offline verification: a JSON-lines export, a signed checkpoint and verifier keys; no server."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from app.audit.leaf import CLEAR_COLUMNS
from app.audit.verify import Chunk, Problem, Report, VerificationFailed, verify_chunks

BATCH = 10_000
_TEXT = ("event_type", "key_id")
_OPTIONAL = tuple(c for c in CLEAR_COLUMNS if c not in _TEXT)


def _bytes(record: dict[str, Any], name: str) -> bytes:
    value = record[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} is not base64 text")
    return base64.b64decode(value, validate=True)


def _row(record: dict[str, Any]) -> tuple[tuple[Any, ...], bytes]:
    """(ROW_COLUMNS + leaf_hash tuple, claimed leaf bytes) of one export record."""
    seq, time_us = record["seq"], record["time_us"]
    if not (type(seq) is int and type(time_us) is int):
        raise ValueError("seq and time_us must be integers")
    for name in CLEAR_COLUMNS:
        value = record[name]
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or null")
    if not record["event_type"] or not record["key_id"]:
        raise ValueError("event_type and key_id are required")
    clear = tuple(record[name] for name in CLEAR_COLUMNS)
    row = (
        seq,
        time_us,
        *clear,
        _bytes(record, "details"),
        _bytes(record, "prev_hash"),
        _bytes(record, "leaf_hash"),
    )
    return row, _bytes(record, "leaf")


def export_chunks(lines: IO[str], batch: int = BATCH) -> Iterator[Chunk]:
    """Chunks of an export file; a malformed line fails verification at its position."""
    rows: list[tuple[Any, ...]] = []
    leaves: list[bytes] = []
    for position, line in enumerate(lines):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            row, leaf = _row(record)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            reason = str(exc) if not isinstance(exc, KeyError) else f"missing {exc}"
            raise VerificationFailed(
                Problem(position, f"line {position + 1} is not a valid export record ({reason})")
            ) from None
        rows.append(row)
        leaves.append(leaf)
        if len(rows) == batch:
            yield rows, leaves
            rows, leaves = [], []
    if rows:
        yield rows, leaves


def read_keys(path: Path) -> list[str]:
    """Verifier keys, one per line (blank lines and # comments ignored)."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def verify_export(
    export: Path, checkpoint_files: Sequence[Path], key_file: Path, *, origin: str | None = None
) -> Report:
    """Verify an export against signed checkpoints and trusted verifier keys."""
    notes = [(str(path), path.read_text()) for path in checkpoint_files]
    keys = read_keys(key_file)
    with export.open(encoding="utf-8") as lines:
        return verify_chunks(export_chunks(lines), notes, keys, origin=origin)
