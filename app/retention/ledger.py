"""The erasure ledger: an append-only file of erased and purged ids, outside the database.

A restored backup carries an old audit log and old tombstones, so neither can say what was
erased after the backup was taken.  This file can: every purge and erasure appends one JSON
line per subject or referral (ids and time only, never values) and fsyncs it BEFORE the
database commits the erasure.  At start (and after `casebridge restore`) the service
re-applies every line the database has not seen (app/retention/reapply.py).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("casebridge.retention")
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    kind: str  # "subject" | "referral"
    id: str
    reason: str  # "purge" | "erasure"
    at: datetime
    subject_id: str | None = None  # the referral's subject, for referral entries

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "kind": self.kind,
            "id": self.id,
            "reason": self.reason,
            "at": self.at.isoformat(),
        }
        if self.subject_id:
            doc["subject_id"] = self.subject_id
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> LedgerEntry:
        doc = json.loads(line)
        return cls(
            kind=str(doc["kind"]),
            id=str(doc["id"]),
            reason=str(doc["reason"]),
            at=datetime.fromisoformat(doc["at"]),
            subject_id=doc.get("subject_id"),
        )


class LedgerError(RuntimeError):
    """The ledger could not be written: the erasure must not go ahead."""


class ErasureLedger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entries: list[LedgerEntry]) -> None:
        """Append and fsync; raises LedgerError, and then nothing may be erased."""
        if not entries:
            return
        data = "".join(e.to_json() + "\n" for e in entries).encode()
        try:
            with _lock:
                created = not self.path.exists()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if created:
                    _fsync_dir(self.path.parent)
        except OSError as exc:
            raise LedgerError(
                f"cannot write the erasure ledger {self.path}: {exc.strerror}"
            ) from None

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, offset: int = 0) -> Iterator[tuple[int, LedgerEntry]]:
        """(end offset, entry) per complete line from `offset`; torn or bad lines are skipped."""
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return
        with fh:
            fh.seek(offset)
            position = offset
            for raw in fh:
                position += len(raw)
                if not raw.endswith(b"\n"):
                    log.warning(
                        "erasure ledger ends with a torn line; ignored", extra={"offset": position}
                    )
                    return
                try:
                    entry = LedgerEntry.from_json(raw.decode())
                except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                    log.error("erasure ledger line unreadable; skipped", extra={"offset": position})
                    continue
                yield position, entry

    def prefix_digest(self, length: int) -> str:
        """SHA-256 of the first `length` bytes: tells a ledger that was replaced or truncated."""
        import hashlib

        digest = hashlib.sha256()
        remaining = length
        if length <= 0 or not self.path.exists():
            return digest.hexdigest()
        with self.path.open("rb") as fh:
            while remaining > 0:
                chunk = fh.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                remaining -= len(chunk)
        return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
