"""Queries for referrals, their history and the change feed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, true
from sqlalchemy.orm import Session, selectinload

from app.policy.reach import Candidates
from app.policy.vocabulary import RELATIONS
from app.referrals import snapshot
from app.referrals.models import Assignment, Referral, ReferralConcern, StatusChange
from app.referrals.snapshot import ReferralSnapshot
from app.retention.models import Tombstone

# A purged or erased referral leaves every list at once, even while its rows await deletion.
_NOT_BURIED = ~exists().where(Tombstone.record_id == Referral.id)


@dataclass(frozen=True, slots=True)
class ReferralFilter:
    statuses: tuple[str, ...] = ()
    risk_levels: tuple[str, ...] = ()
    concerns: tuple[str, ...] = ()
    updated_since: datetime | None = None
    agencies: tuple[str, ...] | None = None  # None: every agency's referrals
    assigned_to: str | None = None  # also include referrals assigned to this agency
    after: tuple[datetime, str] | None = None  # keyset position (updated_at, id), newest first
    extra: dict[str, str] = field(default_factory=dict)
    # What one of the caller's grants needs of a record (app.policy.reach): a prefilter for list
    # scans, with the caller's agency for the relations it names.
    any_of: tuple[Candidates, ...] | None = None
    caller_agency: str | None = None
    networks: tuple[str, ...] | None = None  # None: every network


def get(session: Session, referral_id: str, *, for_update: bool = False) -> Referral | None:
    query = (
        select(Referral)
        .where(Referral.id == referral_id)
        .options(selectinload(Referral.history), selectinload(Referral.assignments))
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


# The record attributes agreements put conditions on (app.access.referral_attributes).
CONDITION_COLUMNS = {"consent": Referral.consent_status, "status": Referral.status, "risk_level": Referral.risk_level,
                     "network": Referral.network_id, "urgency": Referral.urgency,
                     "intervention_type": Referral.intervention_type}


def _candidate(candidates: Candidates, agency: str | None) -> ColumnElement[bool]:
    """SQL for what one grant needs of a record, or less (never more): a condition on an attribute
    SQL cannot see, or a relation without the caller's agency, is left to the decision."""
    parts: list[ColumnElement[bool]] = [
        CONDITION_COLUMNS[key].in_(sorted(allowed)) for key, allowed in candidates.when if key in CONDITION_COLUMNS
    ]
    concerns = dict(candidates.when).get("concerns")
    if concerns is not None:  # one of the record's concerns is listed
        parts.append(exists().where(ReferralConcern.referral_id == Referral.id,
                                    ReferralConcern.concern.in_(sorted(concerns))))
    relations = candidates.relations
    if relations and agency is not None and relations <= RELATIONS:
        held: list[ColumnElement[bool]] = []
        if relations & {"owner", "referrer"}:
            held.append(Referral.referring_agency == agency)
        if "assigned" in relations:
            held.append(exists().where(Assignment.referral_id == Referral.id, Assignment.agency_id == agency))
        parts.append(or_(*held))
    return and_(true(), *parts)


def _filtered(f: ReferralFilter) -> Select[Referral]:
    query = select(Referral).where(_NOT_BURIED)
    if f.agencies is not None:
        visible: ColumnElement[bool] = Referral.referring_agency.in_(f.agencies)
        if f.assigned_to is not None:
            visible = or_(visible, exists().where(
                Assignment.referral_id == Referral.id, Assignment.agency_id == f.assigned_to
            ))
        query = query.where(visible)
    if f.networks is not None:
        query = query.where(Referral.network_id.in_(f.networks))
    if f.statuses:
        query = query.where(Referral.status.in_(f.statuses))
    if f.risk_levels:
        query = query.where(Referral.risk_level.in_(f.risk_levels))
    if f.concerns:
        query = query.where(exists().where(
            ReferralConcern.referral_id == Referral.id, ReferralConcern.concern.in_(f.concerns)
        ))
    if f.updated_since is not None:
        query = query.where(Referral.updated_at >= f.updated_since)
    if f.any_of is not None:
        query = query.where(or_(*(_candidate(c, f.caller_agency) for c in f.any_of)))
    if f.after is not None:
        at, last_id = f.after
        query = query.where(or_(
            Referral.updated_at < at, and_(Referral.updated_at == at, Referral.id < last_id)
        ))
    return query


def page(session: Session, f: ReferralFilter, limit: int) -> list[ReferralSnapshot]:
    """Up to ``limit`` referrals matching ``f``, newest change first, as read-only snapshots."""
    where = _filtered(f).whereclause
    order = (Referral.updated_at.desc(), Referral.id.desc())
    return snapshot.load_where(session, where, order, limit)


def events(
    session: Session, agency_id: str | None, after: int, limit: int, networks: Sequence[str] | None = None
) -> Sequence[StatusChange]:
    """Status changes, oldest first after a cursor; for one agency, of what it made or holds."""
    query = (
        select(StatusChange).where(StatusChange.id > after)
        .join(Referral, Referral.id == StatusChange.referral_id).where(_NOT_BURIED)
    )
    if networks is not None:
        query = query.where(Referral.network_id.in_(networks))
    if agency_id is not None:
        query = query.where(or_(
            Referral.referring_agency == agency_id,
            exists().where(Assignment.referral_id == Referral.id, Assignment.agency_id == agency_id),
        ))
    return session.scalars(query.order_by(StatusChange.id).limit(limit)).all()
