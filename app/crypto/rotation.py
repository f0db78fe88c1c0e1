"""Key rotation for every kind: a new active key, the file saved first, then the data moved over.

Order matters for a crash: the keyring file holding both the old and the new key is written
(atomically, 0600) before any row is re-wrapped or re-indexed, and each batch commits on its
own.  A rotation killed half-way leaves every data key wrapped by a key in the file, so
everything stays readable; `casebridge keys rotate KIND --resume` finishes the job.

- kek: every subject's data key is unwrapped and wrapped again under the new KEK, in batches.
- blind_index: SubjectIdentifier digests are recomputed under the new key from the sealed
  identity (linking tries every key meanwhile); the disclosure log's subject index stays as
  written, because its queries try every blind-index key.
- audit: new entries are sealed with the new key; old ones open with the key id they name.
- token_signing: new tokens are signed with the new key; the old key stays in the JWKS and
  verifies its tokens until they expire.
- checkpoint_signing: for 24 hours the next checkpoints are signed by both keys
  (app/audit/checkpoints.py), and every key stays among the verifier keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.audit.events import AuditEvent, EventType
from app.crypto.aead import DecryptionError
from app.crypto.envelope import WrappedKey
from app.crypto.keyring import KeyKind
from app.db import transaction
from app.errors import AppError
from app.retention import faults
from app.retention.lease import Lease
from app.state import AppState
from app.subjects import service as subjects
from app.subjects.models import Subject, SubjectIdentifier

log = logging.getLogger("casebridge.keys")
Progress = Callable[[int, int], object]
AfterBatch = Callable[[int], None]
LEASE_NAME = "key-rotation"


class RotationError(RuntimeError):
    """The rotation cannot start or could not finish; the message says what to do."""


@dataclass
class RotationReport:
    kind: KeyKind
    key_id: str
    previous_key_id: str | None
    resumed: bool
    moved: int = 0  # data keys re-wrapped, or subjects re-indexed
    failed: list[str] = field(default_factory=list)  # subject ids that could not be moved
    remaining: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key_id": self.key_id,
            "previous_key_id": self.previous_key_id,
            "resumed": self.resumed,
            "moved": self.moved,
            "failed": self.failed,
            "remaining": self.remaining,
        }


def _log_key_event(state: AppState, details: dict[str, Any]) -> None:
    with transaction(state.sessions) as session:
        state.audit.append(
            session,
            AuditEvent(
                event_type=EventType.key_event.value,
                actor_agency=None,
                recipient_agency=None,
                purpose=None,
                decision=None,
                agreement_id=None,
                rule_id=None,
                subject_id=None,
                details=details,
            ),
            now=state.clock(),
        )


def rotate(
    state: AppState,
    kind: KeyKind,
    *,
    resume: bool = False,
    batch: int | None = None,
    progress: Progress | None = None,
    after_batch: AfterBatch | None = None,
) -> RotationReport:
    """Rotate `kind` (or, with resume, finish moving data to the active key).

    One rotation at a time across the deployment (a lease row): two writers of the keyring
    file would lose one another's keys.
    """
    if state.keyring_file is None:
        raise RotationError(
            "the keyring comes from CASEBRIDGE_KEYRING_JSON: rotate it in the secret store, "
            "then run `casebridge keys rotate KIND --resume` with the new keyring"
        )
    lease = Lease(state.sessions, LEASE_NAME)
    if not lease.acquire():
        raise RotationError(f"another key rotation is running ({lease.status().holder})")
    completed = False
    try:
        report = _rotate(
            state,
            kind,
            resume,
            batch or state.settings.retention_batch_size,
            progress,
            _renewing(lease, after_batch),
        )
        completed = True
    finally:
        lease.release(completed=completed)
    return report


def _renewing(lease: Lease, after_batch: AfterBatch | None) -> AfterBatch:
    def after(moved: int) -> None:
        lease.renew()
        if after_batch is not None:
            after_batch(moved)

    return after


def _rotate(
    state: AppState,
    kind: KeyKind,
    resume: bool,
    size: int,
    progress: Progress | None,
    after_batch: AfterBatch,
) -> RotationReport:
    assert state.keyring_file is not None
    keyring = state.keyring
    state.keyring_file.reload_if_changed()  # never write back a keyring older than the file
    previous = keyring.active(kind).id
    if resume:
        report = RotationReport(kind, previous, None, True)
    else:
        fresh = keyring.rotate(kind)
        keyring.save(state.keyring_file.path)
        state.keyring_file.mark_current()
        report = RotationReport(kind, fresh.id, previous, False)
        _log_key_event(
            state,
            {
                "action": "rotate",
                "kind": kind.value,
                "key_id": fresh.id,
                "previous_key_id": previous,
            },
        )
        log.info("key rotated", extra={"kind": kind.value, "key_id": fresh.id})
    if kind is KeyKind.kek:
        _rewrap(state, report, size, progress, after_batch)
        report.remaining = _count_not_under(state, report.key_id)
    elif kind is KeyKind.blind_index:
        _reindex(state, report, size, progress, after_batch)
        report.remaining = _count_identifiers_not_under(state, report.key_id)
    if kind in (KeyKind.kek, KeyKind.blind_index):
        _log_key_event(
            state,
            {
                "action": "rewrap" if kind is KeyKind.kek else "reindex",
                "kind": kind.value,
                "key_id": report.key_id,
                "moved": report.moved,
                "failed": len(report.failed),
                "remaining": report.remaining,
            },
        )
    return report


def _count_not_under(state: AppState, kek_id: str) -> int:
    with transaction(state.sessions) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Subject)
                .where(Subject.wrapped_key.is_not(None), Subject.kek_id != kek_id)
            )
            or 0
        )


def _count_identifiers_not_under(state: AppState, key_id: str) -> int:
    with transaction(state.sessions) as session:
        return int(
            session.scalar(
                select(func.count(func.distinct(SubjectIdentifier.subject_id))).where(
                    SubjectIdentifier.key_id != key_id
                )
            )
            or 0
        )


def _rewrap(
    state: AppState,
    report: RotationReport,
    size: int,
    progress: Progress | None,
    after_batch: AfterBatch | None,
) -> None:
    total = _count_not_under(state, report.key_id)
    after = ""
    while True:
        with transaction(state.sessions) as session:
            rows = list(
                session.scalars(
                    select(Subject)
                    .where(
                        Subject.id > after,
                        Subject.wrapped_key.is_not(None),
                        Subject.kek_id != report.key_id,
                    )
                    .order_by(Subject.id)
                    .limit(size)
                    .with_for_update()
                )
            )
            for subject in rows:
                assert subject.wrapped_key is not None and subject.kek_id is not None
                try:
                    key = state.envelope.unwrap(
                        subject.id, WrappedKey(subject.kek_id, subject.wrapped_key)
                    )
                except DecryptionError:
                    report.failed.append(subject.id)
                    continue
                wrapped = state.envelope.wrap(subject.id, key.key)
                subject.wrapped_key, subject.kek_id = wrapped.wrapped, wrapped.kek_id
                report.moved += 1
        if rows:
            after = rows[-1].id
        _batch_done(report, total, progress, after_batch)
        if len(rows) < size:
            return


def _reindex(
    state: AppState,
    report: RotationReport,
    size: int,
    progress: Progress | None,
    after_batch: AfterBatch | None,
) -> None:
    total = _count_identifiers_not_under(state, report.key_id)
    after = ""
    while True:
        with transaction(state.sessions) as session:
            ids = list(
                session.scalars(
                    select(SubjectIdentifier.subject_id)
                    .distinct()
                    .where(
                        SubjectIdentifier.subject_id > after,
                        SubjectIdentifier.key_id != report.key_id,
                    )
                    .order_by(SubjectIdentifier.subject_id)
                    .limit(size)
                )
            )
            for subject_id in ids:
                if _reindex_one(state, session, subject_id, report.key_id):
                    report.moved += 1
                else:
                    report.failed.append(subject_id)
        if ids:
            after = ids[-1]
        _batch_done(report, total, progress, after_batch)
        if len(ids) < size:
            return


def _reindex_one(state: AppState, session: Session, subject_id: str, key_id: str) -> bool:
    subject = session.get(Subject, subject_id, with_for_update=True)
    stale = delete(SubjectIdentifier).where(
        SubjectIdentifier.subject_id == subject_id, SubjectIdentifier.key_id != key_id
    )
    if subject is None or subject.wrapped_key is None:
        session.execute(stale)  # an erased person keeps no index
        return True
    try:
        identity = subjects.read_identity(state.envelope, subject)
    except AppError:
        return False
    digests = {
        subjects.identifier_digest(state.blind_index, str(i["system"]), str(i["value"]), key_id)
        for i in identity.get("identifiers", [])
    }
    session.execute(stale)
    taken = set(
        session.scalars(
            select(SubjectIdentifier.digest).where(SubjectIdentifier.digest.in_(digests))
        )
    )
    for digest in sorted(digests - taken):
        session.add(SubjectIdentifier(digest=digest, subject_id=subject_id, key_id=key_id))
    session.flush()
    return True


def _batch_done(
    report: RotationReport, total: int, progress: Progress | None, after_batch: AfterBatch | None
) -> None:
    if progress is not None:
        progress(report.moved + len(report.failed), total)
    faults.reached("rotation.batch")
    if after_batch is not None:
        after_batch(report.moved)
