"""At start and after a restore: re-apply every erasure and purge the database has not seen.

The erasure ledger (app/retention/ledger.py) lists every id erased or purged; the database
remembers how far into the ledger it has been brought (a marker with the offset and a digest
of the ledger up to there).  A restored backup remembers an older offset, so everything
erased since the backup was taken is erased again here, before a single request is served.
Each re-applied erasure is logged anew: the restored log does not hold the original entry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db import transaction
from app.referrals.models import Referral
from app.retention import shred, tombstones
from app.retention.ledger import ErasureLedger, LedgerEntry
from app.retention.models import ServiceMarker, Tombstone
from app.state import AppState
from app.subjects.models import Subject

log = logging.getLogger("casebridge.retention")
MARKER = "erasure_ledger"
CHUNK = 500


@dataclass
class ReapplyReport:
    from_offset: int = 0
    to_offset: int = 0
    entries: int = 0
    subjects: int = 0  # people erased again
    referrals: int = 0  # referrals deleted again
    tombstones: int = 0  # tombstones restored for records already absent

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _existing(session: Session, column: InstrumentedAttribute[str], ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(ids))):
        found |= set(session.scalars(select(column).where(column.in_(chunk))))
    return found


def _start_offset(session: Session, ledger: ErasureLedger) -> int:
    marker = session.get(ServiceMarker, MARKER)
    if marker is None:
        return 0
    try:
        position = json.loads(marker.value)
        offset, digest = int(position["offset"]), str(position["digest"])
    except (ValueError, KeyError, TypeError):
        return 0
    if offset > ledger.size() or ledger.prefix_digest(offset) != digest:
        log.warning("erasure ledger differs from what the database last saw; re-applying all of it")
        return 0
    return offset


def reapply(state: AppState, now: datetime | None = None) -> ReapplyReport:
    now = now or state.clock()
    ledger = ErasureLedger(state.settings.resolved_erasure_ledger_path)
    report = ReapplyReport()
    with transaction(state.sessions) as session:
        report.from_offset = report.to_offset = _start_offset(session, ledger)
    entries: list[LedgerEntry] = []
    for end, entry in ledger.read(report.from_offset):
        entries.append(entry)
        report.to_offset = end
    report.entries = len(entries)
    if entries:
        _apply(state, entries, now, report)
    if report.to_offset != report.from_offset:
        value = json.dumps(
            {"offset": report.to_offset, "digest": ledger.prefix_digest(report.to_offset)}
        )
        with transaction(state.sessions) as session:
            marker = session.get(ServiceMarker, MARKER)
            if marker is None:
                session.add(ServiceMarker(name=MARKER, value=value, updated_at=now))
            else:
                marker.value, marker.updated_at = value, now
    if report.subjects or report.referrals:
        shred.fold_wal(state.engine)
    if report.subjects or report.referrals or report.tombstones:
        log.warning(
            "re-applied erasures missing from the database (restored from a backup?)",
            extra=report.as_dict(),
        )
    return report


def _apply(
    state: AppState, entries: list[LedgerEntry], now: datetime, report: ReapplyReport
) -> None:
    subjects = {e.id: e for e in entries if e.kind == "subject"}
    referrals = {e.id: e for e in entries if e.kind == "referral"}
    with transaction(state.sessions) as session:
        live_subjects = _existing(session, Subject.id, subjects)
        live_referrals = _existing(session, Referral.id, referrals)
        owners = (
            dict(
                session.execute(
                    select(Referral.id, Referral.subject_id).where(
                        Referral.id.in_(sorted(live_referrals))
                    )
                ).all()
            )
            if live_referrals
            else {}
        )
    targets: list[tuple[shred.Target, LedgerEntry]] = [
        (shred.Target(sid, (), True), subjects[sid]) for sid in sorted(live_subjects)
    ]
    partial: dict[str, list[str]] = {}
    for rid in sorted(live_referrals):
        if owners[rid] not in live_subjects:
            partial.setdefault(owners[rid], []).append(rid)
    targets += [
        (shred.Target(sid, tuple(ids), False), referrals[ids[0]]) for sid, ids in partial.items()
    ]
    ledger = ErasureLedger(state.settings.resolved_erasure_ledger_path)
    for target, entry in targets:
        reason: tombstones.Reason = "erasure" if entry.reason == "erasure" else "purge"
        details = {
            "reapplied": True,
            "ledger_at": entry.at.isoformat(),
            "reason": "re-applied from the erasure ledger after a restore",
        }
        with transaction(state.sessions) as session:
            sealed = shred.seal_off(
                session,
                state.audit,
                ledger,
                target,
                reason=reason,
                now=now,
                details=details,
                record_in_ledger=False,
            )
        with transaction(state.sessions) as session:
            removed = shred.remove(session, sealed.target, reason=reason, now=now)
        report.subjects += int(target.whole)
        report.referrals += removed.referrals
    with transaction(state.sessions) as session:
        buried = _existing(session, Tombstone.record_id, [*subjects, *referrals])
        for entry in entries:
            if entry.id not in buried:
                kind: tombstones.Kind = "subject" if entry.kind == "subject" else "referral"
                reason_: tombstones.Reason = "erasure" if entry.reason == "erasure" else "purge"
                tombstones.bury(session, kind, [entry.id], reason_, entry.at)
                buried.add(entry.id)
                report.tombstones += 1
