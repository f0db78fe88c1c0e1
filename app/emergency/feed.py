"""Emergency grants in the change feed: the owner agency and the network's coordinator are told.

Feed entries live in their own table (`emergency_notices`), so a referral's status history
stays what it is; `GET /v1/events` merges them with status changes by time, keeping one
position per source in its cursor (`e` for status changes, `n` for these).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.emergency import repository
from app.emergency.models import EmergencyNotice
from app.policy.policy_set import PolicySet
from app.referrals.schemas import EventOut

NOTICE_PREFIX = "emergency-"


class _Timed(Protocol):
    @property
    def at(self) -> datetime: ...


Row = TypeVar("Row", bound=_Timed)
Other = TypeVar("Other", bound=_Timed)


def notices_for(
    session: Session, policies: PolicySet, principal: Principal, networks: Sequence[str], after: int, limit: int,
) -> Sequence[EmergencyNotice]:
    """Entries on referrals the caller's agency owns, or in networks it coordinates (coordinator role)."""
    if not networks:
        return []
    coordinated = [n for n in networks if access.is_coordinator(policies, principal, n)]
    return repository.notices(session, principal.agency_id, coordinated, networks, after, limit)


def merge(rows: Sequence[Row], notices: Sequence[Other], limit: int) -> list[Row | Other]:
    """The first `limit` of both, by time; each source stays in its own order, so each cursor is a prefix."""
    merged: list[Row | Other] = []
    i = j = 0
    while len(merged) < limit and (i < len(rows) or j < len(notices)):
        if j >= len(notices) or (i < len(rows) and rows[i].at <= notices[j].at):
            merged.append(rows[i])
            i += 1
        else:
            merged.append(notices[j])
            j += 1
    return merged


def is_notice(row: object) -> bool:
    return isinstance(row, EmergencyNotice)


def feed_id(row: Any) -> str:
    return f"{NOTICE_PREFIX}{row.id}" if is_notice(row) else str(row.id)


def item(notice: EmergencyNotice) -> EventOut:
    """What the owner and the coordinator learn: who broke the glass, the grant, until when — no reason."""
    return EventOut(
        id=feed_id(notice), kind=notice.kind, referral_id=notice.referral_id, from_status=None,
        status=notice.status, outcome=None, at=notice.at, by_agency=notice.by_agency,
        grant_id=notice.grant_id, agency_id=notice.agency_id, expires_at=notice.expires_at,
    )


def refs(rows: Sequence[Any]) -> dict[str, list[str]]:
    """The grants a feed page names, for its log entry (references only)."""
    grants = sorted({r.grant_id for r in rows if is_notice(r)})
    return {"grant_ids": grants} if grants else {}
