"""Clock notices in the change feed: the network's coordinator is told what fell due.

They live in their own table (`clock_notices`, raised by app/meetings/clocks.py); `GET /v1/events`
merges them with status changes and emergency notices by time, keeping one position per source
in its cursor (`c` for these). Each is shown, like any feed row, only when the referral is
granted to the caller for the purpose stated.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.meetings.models import ClockNotice
from app.policy.policy_set import PolicySet
from app.referrals.models import Referral
from app.referrals.schemas import EventOut
from app.retention.models import Tombstone

CLOCK_PREFIX = "clock-"


def notices_for(
    session: Session, policies: PolicySet, principal: Principal, networks: Sequence[str], after: int, limit: int,
) -> Sequence[ClockNotice]:
    """Notices of the networks the caller coordinates (its agency is the coordinator, with that role)."""
    coordinated = [n for n in networks if access.is_coordinator(policies, principal, n)]
    if not coordinated:
        return []
    query = (
        select(ClockNotice)
        .join(Referral, Referral.id == ClockNotice.referral_id)
        .where(ClockNotice.id > after, ClockNotice.network_id.in_(coordinated),
               Referral.network_id.in_(coordinated), ~exists().where(Tombstone.record_id == Referral.id))
        .order_by(ClockNotice.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def is_clock(row: object) -> bool:
    return isinstance(row, ClockNotice)


def item(notice: ClockNotice) -> EventOut:
    return EventOut(id=feed_id(notice), kind=notice.kind, referral_id=notice.referral_id,
                    from_status=None, status=notice.status, outcome=None, at=notice.at, due_since=notice.due_since)


def feed_id(notice: ClockNotice) -> str:
    return f"{CLOCK_PREFIX}{notice.id}"


def refs(rows: Sequence[object]) -> dict[str, list[int]]:
    """The clock notices a feed page names, for its log entry (references only)."""
    ids = sorted(r.id for r in rows if isinstance(r, ClockNotice))
    return {"clock_notice_ids": ids} if ids else {}
