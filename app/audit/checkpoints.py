"""Signed checkpoints: which keys sign, signing when the tree grew, and the background signer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.audit import store
from app.audit.merkle import EMPTY_ROOT, node_hash
from app.audit.models import AuditCheckpoint
from app.audit.note import sign_checkpoint, verifier_key
from app.crypto.keyring import KeyEntry, KeyKind, Keyring
from app.db import transaction, utcnow
from app.periodic import Periodic

log = logging.getLogger("casebridge.audit")
checkpoints = cast(Table, AuditCheckpoint.__table__)
ROTATION_OVERLAP = timedelta(hours=24)
"""After a rotation, checkpoints are signed by the new key and the previous one for this long."""


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    tree_size: int
    root: bytes
    note: str
    signed_at: datetime


def head_root(head: store.Head) -> bytes:
    """MTH of the tree the head describes: the right fold of its peaks."""
    if not head.peaks:
        return EMPTY_ROOT
    h = head.peaks[-1]
    for left in reversed(head.peaks[:-1]):
        h = node_hash(left, h)
    return h


class CheckpointSigner:
    """Signs checkpoints for one origin with the keyring's checkpoint keys."""

    def __init__(self, keyring: Keyring, origin: str) -> None:
        self.keyring = keyring
        self.origin = origin

    def _keys(self) -> list[KeyEntry]:
        """Checkpoint keys, the active one first, then newest first."""
        keys = sorted(self.keyring.of_kind(KeyKind.checkpoint_signing), key=lambda e: e.created)
        keys.sort(key=lambda e: e.active)  # stable: actives last, each group oldest first
        return list(reversed(keys))

    def signing_keys(self, now: datetime) -> list[KeyEntry]:
        """The active key, plus the previous one while the rotation is younger than 24h."""
        keys = self._keys()
        active = self.keyring.active(KeyKind.checkpoint_signing)
        older = [k for k in keys if not k.active and k.created <= active.created]
        if older and now - active.created < ROTATION_OVERLAP:
            return [active, older[0]]
        return [active]

    def verifier_keys(self) -> list[str]:
        """Every checkpoint key as a C2SP verifier key, the active one first."""
        return [verifier_key(self.origin, _private(k).public_key()) for k in self._keys()]

    def sign(self, tree_size: int, root: bytes, now: datetime) -> str:
        """A checkpoint note for (tree_size, root) with a time extension line."""
        signers = [(self.origin, _private(k)) for k in self.signing_keys(now)]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return sign_checkpoint(self.origin, tree_size, root, signers, [f"time {stamp}"])


def _private(entry: KeyEntry) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(entry.material)


def _stored(row: Sequence[Any]) -> StoredCheckpoint:
    size, root, note, signed_at = row
    return StoredCheckpoint(int(size), bytes(root), str(note), signed_at)


_COLUMNS = (
    checkpoints.c.tree_size,
    checkpoints.c.root,
    checkpoints.c.note,
    checkpoints.c.signed_at,
)


def latest(conn: Connection) -> StoredCheckpoint | None:
    """The stored checkpoint of the largest tree."""
    row = conn.execute(select(*_COLUMNS).order_by(checkpoints.c.tree_size.desc()).limit(1)).first()
    return None if row is None else _stored(row)


def stored(conn: Connection, up_to: int | None = None) -> list[StoredCheckpoint]:
    """Every stored checkpoint (of trees no larger than ``up_to``), smallest tree first."""
    query = select(*_COLUMNS).order_by(checkpoints.c.tree_size)
    if up_to is not None:
        query = query.where(checkpoints.c.tree_size <= up_to)
    return [_stored(row) for row in conn.execute(query)]


def sign_if_grown(
    conn: Connection, signer: CheckpointSigner, now: datetime | None = None
) -> StoredCheckpoint:
    """The latest checkpoint, signing and storing a new one first if the tree grew."""
    now = now or utcnow()
    head = store.read_head(conn)
    last = latest(conn)
    if last is not None and last.tree_size >= head.size:
        return last
    root = head_root(head)
    note = signer.sign(head.size, root, now)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(checkpoints).on_conflict_do_nothing(),
        {"tree_size": head.size, "root": root, "note": note, "signed_at": now},
    )
    row = conn.execute(select(*_COLUMNS).where(checkpoints.c.tree_size == head.size)).one()
    return _stored(row)


class Checkpointer(Periodic):
    """Background thread: signs a checkpoint every ``interval`` seconds if the tree grew.

    An interval of 0 signs only on demand (``sign_now``): tests control it.
    """

    def __init__(
        self, sessions: sessionmaker[Session], signer: CheckpointSigner, interval: float
    ) -> None:
        super().__init__("audit-checkpointer", interval, self.sign_now, _signing_failed, join_seconds=10)
        self.sessions = sessions
        self.signer = signer

    def sign_now(self) -> StoredCheckpoint:
        with transaction(self.sessions) as session:
            signed = sign_if_grown(session.connection(), self.signer)
        metrics.checkpoint_signed(signed.signed_at.timestamp())
        return signed


def _signing_failed(exc: Exception) -> None:
    # The type only: the next tick retries, and the text could quote the database.
    log.warning("checkpoint signing failed", extra={"error_type": type(exc).__name__})


def verifier_lines(keys: Sequence[str]) -> str:
    """The text/plain body of the verifier-key endpoint: one key per line."""
    return "".join(f"{key}\n" for key in keys)
