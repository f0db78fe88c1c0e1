"""Erasing a person or some of their referrals, in two steps that a crash cannot tear apart.

1. `seal_off` (one transaction): the subject's data key is destroyed (crypto-shredding),
   identifiers dropped, every referral tombstoned (reads answer 410 and lists skip it),
   partners' copies flagged withdrawn, the `purge`/`erasure` entry logged, and the ids
   appended (fsynced) to the erasure ledger outside the database just before the commit.
2. `remove` (one transaction): the rows themselves are deleted — referral, status history,
   assignments, concerns, notes, emergency grants, idempotency records, subject.

Between the two, nothing is both unreadable and served: the records are already gone as far
as every reader can tell (410), and `casebridge retention run` (or the next start) finishes
step 2 for any tombstone whose rows are still there (`unfinished`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from app.audit.events import AuditEvent, EventType
from app.audit.service import AuditLog
from app.emergency.models import EmergencyGrant
from app.idempotency import IdempotencyRecord
from app.meetings.models import AgendaItem, CaseAction, ClockNotice, MinutesEntry
from app.notes.models import Note
from app.partners.models import PartnerDisclosure
from app.referrals.models import Assessment, Assignment, Referral, ReferralConcern, StatusChange
from app.retention import dates, tombstones
from app.retention.ledger import ErasureLedger, LedgerEntry
from app.retention.models import LegalHold, Tombstone
from app.subjects.models import Subject, SubjectIdentifier

log = logging.getLogger("casebridge.retention")


@dataclass(frozen=True, slots=True)
class Target:
    """Referrals of one subject to erase; `whole`: the person goes (key and subject)."""

    subject_id: str
    referral_ids: tuple[str, ...]
    whole: bool


@dataclass
class Sealed:
    """What step 1 sealed off, for step 2 and for reports (ids only)."""

    target: Target
    note_ids: list[str] = field(default_factory=list)
    withdrawn_from: list[str] = field(default_factory=list)


def _subject_referrals(session: Session, subject_id: str) -> list[str]:
    return list(session.scalars(select(Referral.id).where(Referral.subject_id == subject_id)))


def seal_off(
    session: Session,
    audit: AuditLog,
    ledger: ErasureLedger,
    target: Target,
    *,
    reason: tombstones.Reason,
    now: datetime,
    actor_agency: str | None = None,
    details: Mapping[str, Any] | None = None,
    record_in_ledger: bool = True,
    take_linked: bool = True,
) -> Sealed:
    """Step 1, in the caller's transaction, to commit right after (the ledger is written).

    An erasure (`take_linked`) takes every referral of the person, including any linked since
    it was planned; a purge that finds one keeps the key and erases only what it planned.
    """
    referral_ids = set(target.referral_ids)
    if target.whole:
        subject = session.get(Subject, target.subject_id, with_for_update=True)
        linked = set(_subject_referrals(session, target.subject_id))
        if take_linked:
            referral_ids |= linked
        elif not linked <= referral_ids:
            target = Target(target.subject_id, target.referral_ids, False)
    if target.whole:
        if subject is not None:
            subject.wrapped_key, subject.kek_id, subject.identity = None, None, None
        session.execute(
            delete(SubjectIdentifier).where(SubjectIdentifier.subject_id == target.subject_id)
        )
    ids = sorted(referral_ids)
    target = Target(target.subject_id, tuple(ids), target.whole)
    sealed = Sealed(target)
    sealed.note_ids = (
        sorted(session.scalars(select(Note.id).where(Note.referral_id.in_(ids)))) if ids else []
    )
    tombstones.bury(session, "referral", ids, reason, now)
    if target.whole:
        tombstones.bury(session, "subject", [target.subject_id], reason, now)
    notices = _withdraw(session, ids, now)
    sealed.withdrawn_from = sorted({agency for agency, _ in notices})
    session.flush()
    event_details = {
        "record_ids": {
            "subject_id": target.subject_id,
            "referral_ids": ids,
            "note_ids": sealed.note_ids,
        },
        "key_destroyed": target.whole,
        "withdrawn_from": sealed.withdrawn_from,
        **(details or {}),
    }
    events = [
        AuditEvent(
            event_type=EventType(reason).value,
            actor_agency=actor_agency,
            recipient_agency=None,
            purpose=None,
            decision=None,
            agreement_id=None,
            rule_id=None,
            subject_id=target.subject_id,
            details=event_details,
        )
    ]
    events += [
        AuditEvent(
            event_type=EventType.withdrawal_notice.value,
            actor_agency=actor_agency,
            recipient_agency=agency,
            purpose=None,
            decision=None,
            agreement_id=None,
            rule_id=None,
            subject_id=target.subject_id,
            details={"record_ids": {"referral_id": referral_id}, "reason": reason},
        )
        for agency, referral_id in notices
    ]
    audit.append_many(session, events, now=now)
    if record_in_ledger:
        ledger.append(ledger_entries([target], reason, now))  # last: a failure rolls all above back
    return sealed


def _withdraw(session: Session, referral_ids: list[str], now: datetime) -> list[tuple[str, str]]:
    """Flag what partners hold of these referrals as withdrawn; (agency, referral) pairs."""
    if not referral_ids:
        return []
    held = session.execute(
        select(PartnerDisclosure.agency_id, PartnerDisclosure.referral_id).where(
            PartnerDisclosure.referral_id.in_(referral_ids),
            PartnerDisclosure.withdrawn_at.is_(None),
        )
    ).all()
    if held:
        session.execute(
            update(PartnerDisclosure)
            .where(
                PartnerDisclosure.referral_id.in_(referral_ids),
                PartnerDisclosure.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=now)
        )
    return sorted((str(a), str(r)) for a, r in held)


@dataclass(frozen=True, slots=True)
class Removed:
    referrals: int
    notes: int
    subject: bool


def remove(
    session: Session, target: Target, *, reason: tombstones.Reason, now: datetime
) -> Removed:
    """Step 2, in the caller's transaction: delete the rows step 1 sealed off."""
    ids = set(target.referral_ids)
    if target.whole:
        ids |= set(_subject_referrals(session, target.subject_id))
    referral_ids = sorted(ids)
    note_ids = (
        sorted(session.scalars(select(Note.id).where(Note.referral_id.in_(referral_ids))))
        if referral_ids
        else []
    )
    tombstones.bury(session, "referral", referral_ids, reason, now)
    if referral_ids:
        resources = referral_ids + note_ids
        session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.resource_id.in_(resources))
        )
        session.execute(
            update(Note).where(Note.referral_id.in_(referral_ids)).values(supersedes=None)
        )
        session.execute(delete(Note).where(Note.referral_id.in_(referral_ids)))
        session.execute(delete(EmergencyGrant).where(EmergencyGrant.referral_id.in_(referral_ids)))
        session.execute(delete(LegalHold).where(LegalHold.referral_id.in_(referral_ids)))
        # A meeting keeps its other items; this person's item, minutes, actions and notices go.
        for child in (ReferralConcern, StatusChange, Assignment, Assessment, MinutesEntry, CaseAction, ClockNotice,
                      AgendaItem):
            session.execute(delete(child).where(child.referral_id.in_(referral_ids)))
        session.execute(delete(Referral).where(Referral.id.in_(referral_ids)))
    subject_gone = False
    if target.whole:
        session.execute(
            delete(SubjectIdentifier).where(SubjectIdentifier.subject_id == target.subject_id)
        )
        subject_gone = session.get(Subject, target.subject_id) is not None
        session.execute(delete(Subject).where(Subject.id == target.subject_id))
        tombstones.bury(session, "subject", [target.subject_id], reason, now)
    else:
        dates.refresh_subject(session, target.subject_id)
    session.flush()
    return Removed(len(referral_ids), len(note_ids), subject_gone)


def unfinished(session: Session) -> list[tuple[Target, tombstones.Reason]]:
    """Sealed off but not yet removed (a run or an erasure stopped between its two steps)."""
    rows = session.execute(
        select(Referral.subject_id, Referral.id, Tombstone.reason).join(
            Tombstone, Tombstone.record_id == Referral.id
        )
    ).all()
    keyless = (
        session.execute(select(Subject.id).where(Subject.wrapped_key.is_(None))).scalars().all()
    )
    reasons = (
        dict(
            session.execute(
                select(Tombstone.record_id, Tombstone.reason).where(
                    Tombstone.record_id.in_(keyless)
                )
            ).all()
        )
        if keyless
        else {}
    )
    by_subject: dict[str, set[str]] = {}
    reason_of: dict[str, str] = {}
    for subject_id, referral_id, reason in rows:
        by_subject.setdefault(subject_id, set()).add(referral_id)
        reason_of.setdefault(subject_id, reason)
    for subject_id in keyless:
        by_subject.setdefault(subject_id, set())
        reason_of[subject_id] = reasons.get(subject_id, reason_of.get(subject_id, "purge"))
    return [
        (Target(s, tuple(sorted(ids)), s in set(keyless)), _reason(reason_of[s]))
        for s, ids in sorted(by_subject.items())
    ]


def _reason(value: str) -> tombstones.Reason:
    return "erasure" if value == "erasure" else "purge"


def ledger_entries(
    targets: Iterable[Target], reason: tombstones.Reason, now: datetime
) -> list[LedgerEntry]:
    out: list[LedgerEntry] = []
    for target in targets:
        out += [
            LedgerEntry("referral", rid, reason, now, target.subject_id)
            for rid in target.referral_ids
        ]
        if target.whole:
            out.append(LedgerEntry("subject", target.subject_id, reason, now))
    return out


def fold_wal(engine: Engine) -> bool:
    """SQLite: fold the WAL into the file, whose deleted cells secure_delete has zeroed.

    Until then the WAL and the file's older page images still hold the sealed rows.  Best
    effort (a long reader can hold it back; the next checkpoint folds it): True when complete.
    """
    if engine.dialect.name != "sqlite":
        return True
    try:
        raw = engine.raw_connection()  # autocommit: a checkpoint cannot run inside a transaction
        try:
            busy, _, _ = raw.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
        finally:
            raw.close()
    except Exception:  # noqa: BLE001
        log.warning("WAL checkpoint after erasure did not complete")
        return False
    return not busy
