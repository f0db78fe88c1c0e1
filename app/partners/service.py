"""Summaries for partners: what an agreement grants, projected, logged, and withdrawn when it stops."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app import access
from app.access import Grant
from app.auth.principal import Principal
from app.errors import Forbidden
from app.partners.models import PartnerDisclosure
from app.policy.decision import Decision
from app.policy.policy_set import PolicySet
from app.referrals import repository, snapshot
from app.referrals import service as referrals
from app.referrals.models import Referral
from app.referrals.snapshot import ReferralSnapshot

_held = cast(Table, PartnerDisclosure.__table__)


@dataclass(frozen=True, slots=True)
class Disclosed:
    """A summary due to the partner: the door renders it; `extra` is the sync's own metadata."""

    referral: ReferralSnapshot
    grant: Grant
    extra: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sync:
    items: list[Disclosed]
    next_cursor: str | None
    withdrawn: list[str]
    due: list[tuple[str, str]]  # (referral id, subject id) held but no longer granted: to withdraw
    etag: str


def retain_until(decision: Decision, referral: ReferralSnapshot, today: date) -> date:
    """The rule's retention, from disclosure or from closure; an open case counts from today."""
    retention = decision.retention
    if retention is None:
        return today
    anchor = today
    if retention.anchor == "closed":
        closed = next((h.at.date() for h in reversed(referral.history) if h.to_status == "closed"), None)
        anchor = closed or today
    result: date = retention.duration.add_to(anchor)
    return result


def sync(
    session: Session, crypto: referrals.Crypto, principal: Principal, purpose: str, policies: PolicySet,
    now: datetime, updated_since: datetime | None, cursor: str | None, limit: int,
) -> Sync:
    if "partner_reader" not in principal.roles:
        raise Forbidden("Summaries are for partner_reader clients.", slug="access-denied")
    today = now.date()
    # What the partner must delete is worked out once per sync, on its first page (the page that
    # lists it): the check walks everything the partner holds.
    due = _withdrawals_due(session, principal, purpose, policies, now) if cursor is None else []
    f = repository.ReferralFilter(updated_since=updated_since)
    page, next_cursor = referrals.list_page(session, principal, purpose, f, cursor, limit, policies, today)
    items = [
        Disclosed(r, g, {"view": g.decision.view, "retain_until": retain_until(g.decision, r, today).isoformat()})
        for r, g in page
    ]
    withdrawn_query = select(PartnerDisclosure.referral_id).where(
        PartnerDisclosure.agency_id == principal.agency_id, PartnerDisclosure.withdrawn_at.is_not(None)
    )
    if updated_since is not None:
        withdrawn_query = withdrawn_query.where(PartnerDisclosure.withdrawn_at >= updated_since)
    withdrawn = sorted(set(session.scalars(withdrawn_query)) | {rid for rid, _ in due}) if cursor is None else []
    fingerprint = json.dumps(
        [[d.referral.id, d.referral.version, d.extra["retain_until"]] for d in items]
        + [withdrawn, next_cursor, [a.content_hash for a in policies]],
        separators=(",", ":"),
    )
    tag = '"' + hashlib.sha256(fingerprint.encode()).hexdigest()[:32] + '"'
    return Sync(items, next_cursor, withdrawn, due, tag)


def withdraw(session: Session, principal: Principal, due: list[tuple[str, str]], now: datetime) -> None:
    """Mark the due withdrawals (those a concurrent sync has not marked first)."""
    if not due:
        return
    _lock_held(session, principal.agency_id, [rid for rid, _ in due])
    session.connection().execute(
        update(_held)
        .where(_held.c.agency_id == principal.agency_id, _held.c.referral_id.in_([rid for rid, _ in due]),
               _held.c.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
    )


def remember(session: Session, principal: Principal, items: list[Disclosed], now: datetime) -> None:
    """Note what this agency now holds, so a later withdrawal can be sent to it.

    Three statements whatever the page size (find, insert the new, touch the known): a page of
    summaries must not cost one ORM flush per row.
    """
    if not items:
        return
    ids = [i.referral.id for i in items]
    conn = session.connection()
    known = _lock_held(session, principal.agency_id, ids)
    fresh = [
        {"agency_id": principal.agency_id, "referral_id": rid, "first_disclosed_at": now,
         "last_disclosed_at": now, "withdrawn_at": None}
        for rid in ids if rid not in known
    ]
    if fresh:  # a concurrent sync of the same partner may insert one first: it holds it then
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(_held).on_conflict_do_nothing(), fresh)
    if known:
        conn.execute(
            update(_held)
            .where(_held.c.agency_id == principal.agency_id, _held.c.referral_id.in_(sorted(known)))
            .values(last_disclosed_at=now, withdrawn_at=None)
        )


def _lock_held(session: Session, agency_id: str, referral_ids: list[str]) -> set[str]:
    """Lock the agency's held rows among these, in id order; the ids held.

    Concurrent syncs of one partner update overlapping rows: locked in one order by every
    transaction, they queue instead of deadlocking (PostgreSQL; SQLite's writers take turns).
    """
    return set(session.connection().execute(
        select(_held.c.referral_id)
        .where(_held.c.agency_id == agency_id, _held.c.referral_id.in_(referral_ids))
        .order_by(_held.c.referral_id)
        .with_for_update()
    ).scalars())


def _withdrawals_due(
    session: Session, principal: Principal, purpose: str, policies: PolicySet, now: datetime
) -> list[tuple[str, str]]:
    """Held summaries whose referral changed (or vanished) and is no longer granted.

    Two statements: the held ids whose referral changed since, then those referrals as snapshots
    (lifecycle and assignments for all of them at once), each decided again.
    """
    rows = session.execute(
        select(PartnerDisclosure.referral_id, Referral.id)
        .join(Referral, Referral.id == PartnerDisclosure.referral_id, isouter=True)
        .where(
            PartnerDisclosure.agency_id == principal.agency_id,
            PartnerDisclosure.withdrawn_at.is_(None),
            or_(Referral.id.is_(None), Referral.updated_at > PartnerDisclosure.last_disclosed_at),
        )
    ).all()
    present = [rid for rid, found in rows if found is not None]
    loaded = {
        r.id: r for r in snapshot.load_where(session, Referral.id.in_(present), [Referral.id], len(present))
    } if present else {}
    due = []
    for referral_id, _ in rows:
        referral = loaded.get(referral_id)
        still = referral is not None and access.decide_referral(
            policies, principal, referral, purpose, None, now.date()
        ).permit
        if not still:
            due.append((referral_id, referral.subject_id if referral is not None else ""))
    return due
