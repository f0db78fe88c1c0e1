"""Legal holds: placing, lifting and finding them; a held record never expires."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agencies import repository as agencies
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.referrals.models import Assignment, Referral
from app.retention.models import LegalHold

HOLD_ROLES = frozenset({"admin", "coordinator"})


def _check_role(principal: Principal, *, agency_scope: bool) -> None:
    if agency_scope and "admin" not in principal.roles:
        raise Forbidden(
            "Agency-wide legal holds are placed and lifted by an admin.", slug="access-denied"
        )
    if principal.roles.isdisjoint(HOLD_ROLES):
        raise Forbidden(
            "Legal holds are placed by a coordinator or an admin.", slug="access-denied"
        )


def place(
    session: Session,
    principal: Principal,
    *,
    reason: str,
    now: datetime,
    agency_id: str | None = None,
    referral: Referral | None = None,
) -> LegalHold:
    _check_role(principal, agency_scope=agency_id is not None)
    if agency_id is not None and agencies.get_agency(session, agency_id) is None:
        raise InvalidInput(
            f"No agency {agency_id!r}.",
            errors=[{"path": "$.agency_id", "message": "unknown agency", "type": "unknown_agency"}],
        )
    hold = LegalHold(
        id="hold_" + secrets.token_urlsafe(12),
        scope="agency" if agency_id is not None else "referral",
        agency_id=agency_id,
        referral_id=referral.id if referral is not None else None,
        reason=reason,
        placed_by_agency=principal.agency_id,
        placed_by_client=principal.client_id,
        placed_at=now,
    )
    session.add(hold)
    session.flush()
    return hold


def lift(
    session: Session, principal: Principal, hold: LegalHold, reason: str, now: datetime
) -> LegalHold:
    _check_role(principal, agency_scope=hold.scope == "agency")
    if hold.lifted_at is not None:
        raise Conflict("This legal hold was already lifted.", slug="hold-lifted")
    hold.lifted_at = now
    hold.lifted_by_client = principal.client_id
    hold.lift_reason = reason
    session.flush()
    return hold


def get(session: Session, hold_id: str, referral_id: str | None = None) -> LegalHold:
    hold = session.get(LegalHold, hold_id)
    if hold is None or (referral_id is not None and hold.referral_id != referral_id):
        raise NotFound("No such legal hold.")
    return hold


def page(
    session: Session,
    *,
    active_only: bool,
    after: str | None,
    limit: int,
    referral_id: str | None = None,
) -> Sequence[LegalHold]:
    query = select(LegalHold).order_by(LegalHold.id).limit(limit)
    if active_only:
        query = query.where(LegalHold.lifted_at.is_(None))
    if referral_id is not None:
        query = query.where(LegalHold.referral_id == referral_id)
    if after is not None:
        query = query.where(LegalHold.id > after)
    return session.scalars(query).all()


def held(session: Session, referral_ids: Iterable[str]) -> dict[str, list[str]]:
    """Referral id -> ids of active holds on it (its own, or its referring/assigned agency's)."""
    ids = sorted(set(referral_ids))
    if not ids:
        return {}
    active = list(session.scalars(select(LegalHold).where(LegalHold.lifted_at.is_(None))))
    if not active:
        return {}
    by_referral: dict[str, list[str]] = {}
    for hold in active:
        if hold.referral_id in ids:
            by_referral.setdefault(hold.referral_id, []).append(hold.id)
    agency_holds = {h.agency_id: h.id for h in active if h.agency_id is not None}
    if agency_holds:
        rows = list(
            session.execute(
                select(Referral.id, Referral.referring_agency).where(
                    Referral.id.in_(ids), Referral.referring_agency.in_(agency_holds)
                )
            ).all()
        )
        rows += session.execute(
            select(Assignment.referral_id, Assignment.agency_id).where(
                Assignment.referral_id.in_(ids), Assignment.agency_id.in_(agency_holds)
            )
        ).all()
        for referral_id, agency_id in rows:
            by_referral.setdefault(referral_id, []).append(agency_holds[agency_id])
    return by_referral


def out(hold: LegalHold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "scope": hold.scope,
        "agency_id": hold.agency_id,
        "referral_id": hold.referral_id,
        "reason": hold.reason,
        "placed_by_agency": hold.placed_by_agency,
        "placed_by_client": hold.placed_by_client,
        "placed_at": hold.placed_at,
        "lifted_at": hold.lifted_at,
        "lifted_by_client": hold.lifted_by_client,
        "lift_reason": hold.lift_reason,
        "active": hold.lifted_at is None,
    }


def hold_event(
    principal: Principal,
    hold: LegalHold,
    action: str,
    subject_id: str | None,
    request_id: str | None,
) -> AuditEvent:
    """The log entry of a hold placed or lifted (the reason is the operator's, not case data)."""
    details = {
        "action": action,
        "hold_id": hold.id,
        "scope": hold.scope,
        "client_id": principal.client_id,
        "on_behalf_of": principal.act,
        "request_id": request_id,
        "record_ids": {
            k: v for k, v in (("referral_id", hold.referral_id), ("agency_id", hold.agency_id)) if v
        },
        "reason": hold.reason if action == "legal_hold_placed" else hold.lift_reason,
    }
    return AuditEvent(
        event_type=EventType.change.value,
        actor_agency=principal.agency_id,
        recipient_agency=None,
        purpose=None,
        decision=None,
        agreement_id=None,
        rule_id=None,
        subject_id=subject_id,
        details={k: v for k, v in details.items() if v is not None},
    )
