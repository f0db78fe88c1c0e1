"""Retention tables: tombstones of erased records, legal holds, job leases and service markers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class Tombstone(Base):
    """A referral or subject that was purged or erased: reads of it answer 410, never 404."""

    __tablename__ = "tombstones"

    record_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "referral" | "subject"
    reason: Mapped[str] = mapped_column(String(20))  # "purge" | "erasure"
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class LegalHold(Base):
    """Stops expiry of one referral, or of every referral an agency made or holds, until lifted."""

    __tablename__ = "legal_holds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scope: Mapped[str] = mapped_column(String(20))  # "agency" | "referral"
    agency_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Not a foreign key: a lifted hold is history that the referral's purge removes itself.
    referral_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    # An agency-wide hold names an agency, never a person: its reasons are the operator's, in clear.
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A case hold's reasons are about the person: sealed with the subject's data key, bound to
    # this row's id (app/retention/holds.py), so that erasing the person shreds them.
    sealed_reason: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    placed_by_agency: Mapped[str] = mapped_column(String(64))
    placed_by_client: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by_client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lift_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    sealed_lift_reason: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)

    __table_args__ = (Index("ix_legal_holds_lifted_at", "lifted_at"),)


class JobLease(Base):
    """Who runs a deployment-wide job now (one process at a time), and when it last finished."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ServiceMarker(Base):
    """Named values the service keeps about itself (e.g. how far the erasure ledger applies)."""

    __tablename__ = "service_markers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
