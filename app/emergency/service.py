"""Emergency access rules: who may break the glass, for how long, and the reads it allows."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.crypto.aead import DecryptionError
from app.crypto.envelope import Envelope
from app.emergency.models import EmergencyGrant
from app.emergency.schemas import MIN_REASON, GrantOut
from app.errors import Conflict, InvalidInput, NotFound
from app.policy.decision import Decision, Record
from app.policy.engine import decide
from app.policy.policy_set import PolicySet
from app.policy.vocabulary import EMERGENCY_PURPOSE
from app.referrals.models import Referral
from app.subjects import service as subjects
from app.subjects.models import Subject

REASON_CONTEXT = "emergency.reason"


def decide_emergency(policies: PolicySet, principal: Principal, referral: Referral, now: datetime) -> Decision:
    relations = access.referral_relations(principal, referral)
    record = Record("referral", access.referral_attributes(referral))
    return decide(policies, access.caller(principal, relations), EMERGENCY_PURPOSE, record, None, now=now.date())


def active_grant(session: Session, referral_id: str, agency_id: str, now: datetime) -> EmergencyGrant | None:
    return session.scalars(
        select(EmergencyGrant)
        .where(EmergencyGrant.referral_id == referral_id, EmergencyGrant.agency_id == agency_id,
               EmergencyGrant.expires_at > now)
        .order_by(EmergencyGrant.expires_at.desc())
        .limit(1)
    ).first()


def request_access(
    session: Session, envelope: Envelope, policies: PolicySet, principal: Principal, referral: Referral,
    reason: str, now: datetime,
) -> tuple[EmergencyGrant, Decision]:
    access.refuse_admin(principal)
    if len(reason) < MIN_REASON:
        raise InvalidInput(
            f"Emergency access needs a reason of at least {MIN_REASON} characters.",
            errors=[{"path": "$.reason", "message": f"at least {MIN_REASON} characters", "type": "too_short"}],
        )
    decision = decide_emergency(policies, principal, referral, now)
    if not decision.permit or decision.emergency_window is None:
        raise access.AccessDenied(decision, EMERGENCY_PURPOSE, owner_agency=referral.referring_agency,
                                  subject_id=referral.subject_id)
    existing = active_grant(session, referral.id, principal.agency_id, now)
    if existing is not None:
        raise Conflict(
            f"Your agency already holds emergency access to this referral until {existing.expires_at.isoformat()}.",
            slug="emergency-grant-active", grant_id=existing.id,
        )
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None
    grant_id = "emg_" + secrets.token_urlsafe(12)
    sealed = subjects.data_key(envelope, subject).seal(reason.encode(), f"{REASON_CONTEXT}:{grant_id}")
    grant = EmergencyGrant(
        id=grant_id, referral_id=referral.id, agency_id=principal.agency_id, client_id=principal.client_id,
        person=principal.act, reason=sealed, agreement_id=decision.agreement_id or "",
        view=decision.view or "", fields=sorted(decision.fields), granted_at=now,
        expires_at=decision.emergency_window.add_to(now), reviewed_at=None,
    )
    session.add(grant)
    session.flush()
    return grant, decision


def render(session: Session, envelope: Envelope, grant: EmergencyGrant, now: datetime, *, with_reason: bool) -> GrantOut:
    reason = None
    if with_reason:
        referral = session.get(Referral, grant.referral_id)
        subject = session.get(Subject, referral.subject_id) if referral else None
        try:
            if subject is not None:
                key = subjects.data_key(envelope, subject)
                reason = key.open(grant.reason, f"{REASON_CONTEXT}:{grant.id}").decode()
        except (DecryptionError, Exception):  # noqa: BLE001 - an erased person's reason is gone
            reason = None
    return GrantOut(
        id=grant.id, referral_id=grant.referral_id, agency_id=grant.agency_id, client_id=grant.client_id,
        person=grant.person, view=grant.view, fields=list(grant.fields), granted_at=grant.granted_at,
        expires_at=grant.expires_at, active=grant.expires_at > now, reviewed_at=grant.reviewed_at,
        reviewed_by=grant.reviewed_by, finding=grant.finding, reason=reason,
    )


def list_grants(
    session: Session, reviewed: bool | None, after: tuple[datetime, str] | None, limit: int
) -> Sequence[EmergencyGrant]:
    query = select(EmergencyGrant).order_by(EmergencyGrant.granted_at, EmergencyGrant.id).limit(limit)
    if reviewed is not None:
        query = query.where(
            EmergencyGrant.reviewed_at.is_not(None) if reviewed else EmergencyGrant.reviewed_at.is_(None)
        )
    if after is not None:
        at, last = after
        query = query.where(or_(EmergencyGrant.granted_at > at,
                                and_(EmergencyGrant.granted_at == at, EmergencyGrant.id > last)))
    return session.scalars(query).all()


def review(session: Session, principal: Principal, grant_id: str, finding: str, now: datetime) -> EmergencyGrant:
    grant = session.get(EmergencyGrant, grant_id)
    if grant is None:
        raise NotFound("No such emergency grant.")
    if grant.reviewed_at is not None:
        raise Conflict("This grant was already reviewed.", slug="already-reviewed")
    grant.reviewed_at, grant.reviewed_by, grant.finding = now, principal.client_id, finding
    session.flush()
    return grant
