"""Tombstones: the ids of purged and erased records, so reads answer 410 Gone, not 404."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.retention.models import Tombstone

Reason = Literal["purge", "erasure"]
Kind = Literal["referral", "subject"]
PAST = {"purge": "purged", "erasure": "erased"}


def find(session: Session, record_id: str) -> Tombstone | None:
    return session.get(Tombstone, record_id)


def bury(session: Session, kind: Kind, ids: Iterable[str], reason: Reason, at: datetime) -> None:
    """Add tombstones for ids that have none (an earlier one, e.g. a purge, stands)."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    known = set(session.scalars(select(Tombstone.record_id).where(Tombstone.record_id.in_(wanted))))
    for record_id in wanted:
        if record_id not in known:
            session.add(Tombstone(record_id=record_id, kind=kind, reason=reason, at=at))
    session.flush()
