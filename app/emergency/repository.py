"""Queries for emergency grants, their feed entries and flagged agencies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from app.emergency.models import AgencyFlag, EmergencyGrant, EmergencyNotice
from app.referrals.models import Referral
from app.retention.models import Tombstone

_NOT_BURIED = ~exists().where(Tombstone.record_id == Referral.id)


def active_grant(session: Session, referral_id: str, agency_id: str, now: datetime) -> EmergencyGrant | None:
    """The agency's grant on the referral that has neither expired nor been revoked."""
    return session.scalars(
        select(EmergencyGrant)
        .where(EmergencyGrant.referral_id == referral_id, EmergencyGrant.agency_id == agency_id,
               EmergencyGrant.expires_at > now, EmergencyGrant.revoked_at.is_(None))
        .order_by(EmergencyGrant.expires_at.desc())
        .limit(1)
    ).first()


def granted_since(session: Session, agency_id: str, agreement_id: str, since: datetime) -> list[datetime]:
    """When the agency received each grant under the agreement since `since` (revoked ones too)."""
    return list(session.scalars(
        select(EmergencyGrant.granted_at)
        .where(EmergencyGrant.agency_id == agency_id, EmergencyGrant.agreement_id == agreement_id,
               EmergencyGrant.granted_at > since)
        .order_by(EmergencyGrant.granted_at)
    ))


def open_flag(session: Session, agency_id: str, network_id: str) -> AgencyFlag | None:
    return session.scalars(
        select(AgencyFlag)
        .where(AgencyFlag.agency_id == agency_id, AgencyFlag.network_id == network_id,
               AgencyFlag.cleared_at.is_(None))
        .order_by(AgencyFlag.flagged_at)
        .limit(1)
    ).first()


def grants(
    session: Session, networks: Sequence[str], reviewed: bool | None, after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[EmergencyGrant]:
    """Grants on referrals of the given networks, oldest first after a keyset position."""
    query = (
        select(EmergencyGrant)
        .join(Referral, Referral.id == EmergencyGrant.referral_id)
        .where(Referral.network_id.in_(networks))
        .order_by(EmergencyGrant.granted_at, EmergencyGrant.id)
        .limit(limit)
    )
    if reviewed is not None:
        query = query.where(
            EmergencyGrant.reviewed_at.is_not(None) if reviewed else EmergencyGrant.reviewed_at.is_(None)
        )
    if after is not None:
        at, last = after
        query = query.where(or_(EmergencyGrant.granted_at > at,
                                and_(EmergencyGrant.granted_at == at, EmergencyGrant.id > last)))
    return session.scalars(query).all()


def flags(
    session: Session, networks: Sequence[str], active: bool | None, after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[AgencyFlag]:
    query = (
        select(AgencyFlag)
        .where(AgencyFlag.network_id.in_(networks))
        .order_by(AgencyFlag.flagged_at, AgencyFlag.id)
        .limit(limit)
    )
    if active is not None:
        query = query.where(AgencyFlag.cleared_at.is_(None) if active else AgencyFlag.cleared_at.is_not(None))
    if after is not None:
        at, last = after
        query = query.where(or_(AgencyFlag.flagged_at > at, and_(AgencyFlag.flagged_at == at, AgencyFlag.id > last)))
    return session.scalars(query).all()


def flags_by_grant(session: Session, grant_ids: Sequence[str]) -> dict[str, str]:
    if not grant_ids:
        return {}
    rows = session.execute(select(AgencyFlag.grant_id, AgencyFlag.id).where(AgencyFlag.grant_id.in_(grant_ids)))
    return {grant_id: flag_id for grant_id, flag_id in rows}


def notices(
    session: Session, owner_agency: str, coordinated: Sequence[str], networks: Sequence[str], after: int,
    limit: int,
) -> Sequence[EmergencyNotice]:
    """Feed entries on referrals the agency owns or whose network it coordinates, oldest first."""
    told = Referral.referring_agency == owner_agency
    if coordinated:
        told = or_(told, Referral.network_id.in_(coordinated))
    query = (
        select(EmergencyNotice)
        .join(Referral, Referral.id == EmergencyNotice.referral_id)
        .where(EmergencyNotice.id > after, _NOT_BURIED, Referral.network_id.in_(networks), told)
        .order_by(EmergencyNotice.id)
        .limit(limit)
    )
    return session.scalars(query).all()

