"""Legal holds: who places, lifts and reads them, their sealed reasons; a held record never expires.

A hold on a referral is the network coordinator's: placing, lifting and reading it are decided
like any change or read of the referral (app/access.py), and its reasons, which are about the
person, are sealed with the subject's data key.  An agency-wide hold is an operator's (admin):
it names an agency, never a person, and its reasons are the operator's text.  The log keeps
ids and field names only, never a reason (policies/README.md, "Who may change what").
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access
from app.agencies import repository as agencies
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
from app.crypto.aead import DecryptionError
from app.crypto.envelope import DataKey, Envelope
from app.errors import Conflict, Forbidden, IntegrityFailure, InvalidInput, NotFound
from app.policy.policy_set import PolicySet
from app.referrals.models import Assignment, Referral
from app.retention.models import LegalHold
from app.subjects import service as subjects
from app.subjects.models import Subject

# Associated-data contexts of a case hold's sealed reasons (frozen in migration 0010).
REASON = "legal_hold.reason"
LIFT_REASON = "legal_hold.lift_reason"
# Holding a referral, lifting that hold, and reading its reasons: the network's coordinator.
CASE_HOLD_NEEDS = frozenset({"coordinator"})
READ_FIELDS = ("legal_hold.reason", "legal_hold.lift_reason")


class HoldsDenied(access.ChangeDenied):
    """A read of a referral's holds by a caller who does not hold the relation it needs."""

    slug = "access-denied"


@dataclass(frozen=True, slots=True)
class CaseHolds:
    """A page of a referral's holds with their reasons opened, and the grant that lets them leave."""

    referral: Referral
    holds: list[dict[str, Any]]
    grant: access.Grant
    next_after: str | None


# -- a referral's holds: the network coordinator's ----------------------------------------


def _key(session: Session, envelope: Envelope, referral: Referral) -> DataKey:
    subject = session.get(Subject, referral.subject_id)
    if subject is None:
        raise NotFound("No such referral.")
    return subjects.data_key(envelope, subject)


def _context(field: str, hold_id: str) -> str:
    return f"{field}:{hold_id}"


def _open(key: DataKey, sealed: bytes | None, field: str, hold_id: str) -> str | None:
    if sealed is None:
        return None
    try:
        return key.open(sealed, _context(field, hold_id)).decode()
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None


def place_on_referral(
    session: Session, envelope: Envelope, policies: PolicySet, principal: Principal, referral: Referral,
    *, reason: str, now: datetime,
) -> LegalHold:
    access.authorize_change(policies, principal, referral, now.date(), action="Placing a legal hold",
                            needs=CASE_HOLD_NEEDS)
    hold_id = "hold_" + secrets.token_urlsafe(12)
    hold = LegalHold(
        id=hold_id,
        scope="referral",
        referral_id=referral.id,
        sealed_reason=_key(session, envelope, referral).seal(reason.encode(), _context(REASON, hold_id)),
        placed_by_agency=principal.agency_id,
        placed_by_client=principal.client_id,
        placed_at=now,
    )
    session.add(hold)
    session.flush()
    return hold


def lift_on_referral(
    session: Session, envelope: Envelope, policies: PolicySet, principal: Principal, referral: Referral,
    hold_id: str, *, reason: str, now: datetime,
) -> LegalHold:
    access.authorize_change(policies, principal, referral, now.date(), action="Lifting a legal hold",
                            needs=CASE_HOLD_NEEDS)
    hold = get(session, hold_id, referral.id)
    _not_lifted(hold)
    hold.lifted_at = now
    hold.lifted_by_client = principal.client_id
    hold.sealed_lift_reason = _key(session, envelope, referral).seal(
        reason.encode(), _context(LIFT_REASON, hold.id)
    )
    session.flush()
    return hold


def read_case_holds(
    session: Session, envelope: Envelope, policies: PolicySet, principal: Principal, referral: Referral,
    purpose: str, today: date, *, active_only: bool, after: str | None, limit: int,
) -> CaseHolds:
    """A referral's holds with their reasons: for its network's coordinator, under a purpose
    for which an agreement grants it the referral."""
    grant = access.referral_grant(policies, principal, referral, purpose, None, today)
    try:
        access.authorize_change(policies, principal, referral, today, action="Reading legal holds",
                                needs=CASE_HOLD_NEEDS)
    except access.ChangeDenied as denied:
        raise HoldsDenied(denied.detail, owner_agency=denied.owner_agency, subject_id=denied.subject_id,
                          network=referral.network_id) from None
    rows = page(session, active_only=active_only, after=after, limit=limit + 1, referral_id=referral.id)
    key = _key(session, envelope, referral) if rows else None
    items = []
    for hold in rows[:limit]:
        assert key is not None
        items.append(out(hold, reason=_open(key, hold.sealed_reason, REASON, hold.id),
                         lift_reason=_open(key, hold.sealed_lift_reason, LIFT_REASON, hold.id)))
    next_after = items[-1]["id"] if len(rows) > limit else None
    return CaseHolds(referral, items, grant, next_after)


# -- agency-wide holds: the operators' -----------------------------------------------------


def _operator(principal: Principal) -> None:
    if "admin" not in principal.roles:
        raise Forbidden("Agency-wide legal holds are placed and lifted by an admin.", slug="access-denied")


def place_on_agency(
    session: Session, principal: Principal, *, agency_id: str, reason: str, now: datetime
) -> LegalHold:
    _operator(principal)
    if agencies.get_agency(session, agency_id) is None:
        raise InvalidInput(
            f"No agency {agency_id!r}.",
            errors=[{"path": "$.agency_id", "message": "unknown agency", "type": "unknown_agency"}],
        )
    hold = LegalHold(
        id="hold_" + secrets.token_urlsafe(12),
        scope="agency",
        agency_id=agency_id,
        reason=reason,
        placed_by_agency=principal.agency_id,
        placed_by_client=principal.client_id,
        placed_at=now,
    )
    session.add(hold)
    session.flush()
    return hold


def lift_on_agency(session: Session, principal: Principal, hold_id: str, *, reason: str, now: datetime) -> LegalHold:
    _operator(principal)
    hold = get(session, hold_id)
    if hold.scope != "agency":
        raise Forbidden(
            "A referral's legal hold is lifted by its network's coordinator; operators lift agency-wide holds.",
            slug="admin-no-case-data",
        )
    _not_lifted(hold)
    hold.lifted_at = now
    hold.lifted_by_client = principal.client_id
    hold.lift_reason = reason
    session.flush()
    return hold


# -- shared --------------------------------------------------------------------------------


def _not_lifted(hold: LegalHold) -> None:
    if hold.lifted_at is not None:
        raise Conflict("This legal hold was already lifted.", slug="hold-lifted")


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
    scope: str | None = None,
) -> Sequence[LegalHold]:
    query = select(LegalHold).order_by(LegalHold.id).limit(limit)
    if active_only:
        query = query.where(LegalHold.lifted_at.is_(None))
    if referral_id is not None:
        query = query.where(LegalHold.referral_id == referral_id)
    if scope is not None:
        query = query.where(LegalHold.scope == scope)
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


def out(hold: LegalHold, *, reason: str | None = None, lift_reason: str | None = None) -> dict[str, Any]:
    """A hold as the API shows it.  An agency-wide hold carries its operator's reasons; a case
    hold only the reasons its caller was given to read (`read_case_holds`), else none."""
    if hold.scope == "agency":
        reason, lift_reason = hold.reason, hold.lift_reason
    return {
        "id": hold.id,
        "scope": hold.scope,
        "agency_id": hold.agency_id,
        "referral_id": hold.referral_id,
        "reason": reason,
        "placed_by_agency": hold.placed_by_agency,
        "placed_by_client": hold.placed_by_client,
        "placed_at": hold.placed_at,
        "lifted_at": hold.lifted_at,
        "lifted_by_client": hold.lifted_by_client,
        "lift_reason": lift_reason,
        "active": hold.lifted_at is None,
    }


def hold_event(
    principal: Principal,
    hold: LegalHold,
    action: str,
    subject_id: str | None,
    request_id: str | None,
) -> AuditEvent:
    """The log entry of a hold placed or lifted: ids and the field written, never the reason.

    The log is never rewritten; a reason in it would outlive the person's erasure.
    """
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
        "fields": [REASON if action == "legal_hold_placed" else LIFT_REASON],
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
