"""Erase a person now: refuse under a legal hold, else seal off and remove, or fail loudly."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from app import access, metrics
from app.auth.principal import Principal
from app.db import transaction
from app.erasure.schemas import ErasureIn
from app.errors import AppError, Conflict, Gone, NotFound
from app.policy.policy_set import PolicySet
from app.referrals.models import Referral
from app.retention import faults, holds, shred, tombstones
from app.retention.ledger import ErasureLedger
from app.state import AppState
from app.subjects.models import Subject

log = logging.getLogger("casebridge.erasure")
# Erasing a person destroys every agency's records of them: only the coordinator of every
# network that holds a referral about them may ask for it (policies/README.md).
ERASER_NEEDS = frozenset({"coordinator"})


class ErasureIncomplete(AppError):
    """The key is destroyed and the records sealed off, but deleting the rows failed."""

    status, slug, title = 500, "erasure-incomplete", "Erasure incomplete"


@dataclass(frozen=True, slots=True)
class Erased:
    subject_id: str
    erased_at: datetime
    referral_ids: list[str]
    notes: int
    withdrawn_from: list[str]


def authorize(
    policies: PolicySet, principal: Principal, subject_id: str, referrals: Sequence[Referral], today: date
) -> None:
    """Each referral about the person must be one whose network the caller coordinates."""
    if not referrals:
        # No referral, no network to decide by: the retention run removes what is left.
        raise access.ChangeDenied(
            "Erasure is decided by the networks holding the person's referrals; none is left.",
            subject_id=subject_id,
        )
    for referral in sorted(referrals, key=lambda r: r.id):
        access.authorize_change(policies, principal, referral, today, action="Erasure", needs=ERASER_NEEDS)


def erase(
    state: AppState, principal: Principal, subject_id: str, data: ErasureIn, request_id: str | None
) -> Erased:
    """Runs its own transactions (the caller must hold none open: SQLite has one writer)."""
    access.refuse_admin(principal)
    now = state.clock()
    with transaction(state.sessions) as session:
        gone = tombstones.find(session, subject_id)
        if gone is not None:
            raise Gone(
                f"This person was {tombstones.PAST[gone.reason]} on {gone.at.date().isoformat()}.",
                slug=f"subject-{tombstones.PAST[gone.reason]}",
            )
        if session.get(Subject, subject_id) is None:
            raise NotFound("No such subject.")
        referrals = list(session.scalars(select(Referral).where(Referral.subject_id == subject_id)))
        authorize(state.policies.current, principal, subject_id, referrals, now.date())
        referral_ids = [r.id for r in referrals]
        on_hold = holds.held(session, referral_ids)
    if on_hold:
        raise Conflict(
            "A legal hold keeps this person's records; lift it before erasing.",
            slug="legal-hold",
            hold_ids=sorted({h for ids in on_hold.values() for h in ids}),
        )
    target = shred.Target(subject_id, tuple(sorted(referral_ids)), True)
    details = {
        "legal_ground": data.legal_ground.value,
        "reference": data.reference,
        "client_id": principal.client_id,
        "on_behalf_of": principal.act,
        "request_id": request_id,
    }
    ledger = ErasureLedger(state.settings.resolved_erasure_ledger_path)
    with transaction(state.sessions) as session:
        sealed = shred.seal_off(
            session,
            state.audit,
            ledger,
            target,
            reason="erasure",
            now=now,
            actor_agency=principal.agency_id,
            details={k: v for k, v in details.items() if v is not None},
        )
    faults.reached("erasure.sealed")
    try:
        with transaction(state.sessions) as session:
            removed = shred.remove(session, sealed.target, reason="erasure", now=now)
    except Exception as exc:
        log.error(
            "erasure incomplete: rows remain sealed off",
            extra={"subject_id": subject_id, "error_type": type(exc).__name__},
        )
        raise ErasureIncomplete(
            "The person's data key is destroyed and every record answers 410, but deleting the "
            "rows "
            "failed; `casebridge retention run` finishes it. Retry or report this request id.",
        ) from None
    shred.fold_wal(state.engine)
    metrics.erased()
    return Erased(
        subject_id, now, list(sealed.target.referral_ids), removed.notes, sealed.withdrawn_from
    )
