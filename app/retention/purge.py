"""The purge: recompute what is due, then erase what expired and is not held, subject by subject."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app import metrics
from app.db import transaction
from app.referrals.models import Referral
from app.retention import faults, holds, shred
from app.retention.dates import RetentionRules, apply
from app.retention.lease import Lease
from app.retention.ledger import ErasureLedger
from app.retention.models import Tombstone
from app.state import AppState
from app.subjects.models import Subject

log = logging.getLogger("casebridge.retention")
LEASE_NAME = "retention"
Progress = Callable[[int, int], object]


class PurgeBusy(RuntimeError):
    """Another process is running the purge."""


@dataclass(frozen=True, slots=True)
class Planned:
    target: shred.Target
    retain_until: datetime | None


@dataclass
class PurgeReport:
    dry_run: bool
    planned: list[Planned] = field(default_factory=list)
    held: dict[str, list[str]] = field(default_factory=dict)  # referral id -> hold ids
    recomputed: int = 0
    finished: int = 0  # sealed off by an earlier, interrupted run and removed now
    subjects: int = 0  # people erased (key destroyed)
    referrals: int = 0
    notes: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "recomputed": self.recomputed,
            "finished": self.finished,
            "subjects": self.subjects,
            "referrals": self.referrals,
            "notes": self.notes,
            "held": self.held,
            "planned": [
                {
                    "subject_id": p.target.subject_id,
                    "referral_ids": list(p.target.referral_ids),
                    "erase_subject": p.target.whole,
                    "retain_until": p.retain_until.isoformat() if p.retain_until else None,
                }
                for p in self.planned
            ],
        }


def rules_for(state: AppState) -> RetentionRules:
    return RetentionRules.of(state.policies.current, state.settings.max_open_retention)


_not_buried = ~exists().where(Tombstone.record_id == Referral.id)


def _due_dates(state: AppState, now: datetime, *, write: bool) -> tuple[dict[str, datetime], int]:
    """Fresh dates for referrals not yet dated or due now: agreements may have changed since."""
    rules = rules_for(state)
    fresh: dict[str, datetime] = {}
    after = ""
    batch = state.settings.retention_batch_size
    while True:
        with transaction(state.sessions) as session:
            rows = list(
                session.scalars(
                    select(Referral)
                    .where(
                        Referral.id > after,
                        _not_buried,
                        (Referral.retain_until.is_(None)) | (Referral.retain_until <= now),
                    )
                    .order_by(Referral.id)
                    .limit(batch)
                )
            )
            for referral in rows:
                fresh[referral.id] = apply(session, rules, referral, now)
            if not write:
                session.rollback()
        if len(rows) < batch:
            return fresh, len(fresh)
        after = rows[-1].id


def plan(
    session: Session, fresh: dict[str, datetime], now: datetime
) -> tuple[list[Planned], dict[str, list[str]]]:
    """What expired and is not held, by subject; a subject goes when all its referrals do."""
    expired = {rid for rid, until in fresh.items() if until <= now}
    held = holds.held(session, expired)
    free = expired - set(held)
    subjects: dict[str, list[str]] = {}
    if free:
        for rid, subject_id in session.execute(
            select(Referral.id, Referral.subject_id).where(Referral.id.in_(free))
        ):
            subjects.setdefault(subject_id, []).append(rid)
    planned: list[Planned] = []
    for subject_id, ids in sorted(subjects.items()):
        everything = set(
            session.scalars(
                select(Referral.id).where(Referral.subject_id == subject_id, _not_buried)
            )
        )
        whole = everything <= set(ids)
        planned.append(
            Planned(shred.Target(subject_id, tuple(sorted(ids)), whole), max(fresh[r] for r in ids))
        )
    orphans = session.execute(
        select(Subject.id, Subject.retain_until).where(
            Subject.wrapped_key.is_not(None),
            ~exists().where(Referral.subject_id == Subject.id),
            (Subject.retain_until.is_(None)) | (Subject.retain_until <= now),
        )
    ).all()
    planned += [Planned(shred.Target(sid, (), True), until) for sid, until in orphans]
    return planned, held


def run(
    state: AppState,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    trigger: str = "cli",
) -> PurgeReport:
    """Purge what expired; with dry_run, only say what would go (nothing is written)."""
    now = state.clock()
    report = PurgeReport(dry_run=dry_run)
    if dry_run:
        fresh, report.recomputed = _due_dates(state, now, write=False)
        with transaction(state.sessions) as session:
            report.planned, report.held = plan(session, fresh, now)
        return report
    lease = Lease(state.sessions, LEASE_NAME)
    if not lease.acquire():
        status = lease.status()
        raise PurgeBusy(
            f"another process is purging ({status.holder}, lease until {status.expires_at})"
        )
    completed = False
    try:
        report.finished = _finish_unfinished(state, now)
        fresh, report.recomputed = _due_dates(state, now, write=True)
        with transaction(state.sessions) as session:
            report.planned, report.held = plan(session, fresh, now)
        ledger = ErasureLedger(state.settings.resolved_erasure_ledger_path)
        total = len(report.planned)
        for done, item in enumerate(report.planned, start=1):
            _purge_one(state, ledger, item, now, trigger, report)
            lease.renew()
            if progress is not None:
                progress(done, total)
        completed = True
    finally:
        lease.release(completed=completed)
    metrics.purged(report.subjects, report.referrals, report.notes)
    if report.subjects or report.referrals or report.finished:
        shred.fold_wal(state.engine)
    log.info(
        "purge finished",
        extra={
            "subjects": report.subjects,
            "referrals": report.referrals,
            "notes": report.notes,
            "held": len(report.held),
            "finished": report.finished,
        },
    )
    return report


def _purge_one(
    state: AppState,
    ledger: ErasureLedger,
    item: Planned,
    now: datetime,
    trigger: str,
    report: PurgeReport,
) -> None:
    details = {
        "reason": "retention expired",
        "trigger": trigger,
        "retain_until": item.retain_until.isoformat() if item.retain_until else None,
    }
    with transaction(state.sessions) as session:
        sealed = shred.seal_off(
            session,
            state.audit,
            ledger,
            item.target,
            reason="purge",
            now=now,
            details=details,
            take_linked=False,
        )
    faults.reached("purge.sealed")
    with transaction(state.sessions) as session:
        removed = shred.remove(session, sealed.target, reason="purge", now=now)
    report.subjects += int(sealed.target.whole)
    report.referrals += removed.referrals
    report.notes += removed.notes


def _finish_unfinished(state: AppState, now: datetime) -> int:
    with transaction(state.sessions) as session:
        pending = shred.unfinished(session)
    for target, reason in pending:
        with transaction(state.sessions) as session:
            shred.remove(session, target, reason=reason, now=now)
    if pending:
        log.warning("finished an interrupted purge or erasure", extra={"subjects": len(pending)})
    return len(pending)
