"""Emergency grants, the feed entries that announce them, and the agencies an auditor flagged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class EmergencyGrant(Base):
    __tablename__ = "emergency_grants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    person: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The reason often describes the person: sealed with the subject's data key.
    reason: Mapped[bytes] = mapped_column(LargeBinary)
    agreement_id: Mapped[str] = mapped_column(String(100))
    view: Mapped[str] = mapped_column(String(100))
    fields: Mapped[list[str]] = mapped_column(JSON)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A controlled code (app/emergency/schemas.py Finding); the auditor's note is sealed like the reason.
    finding: Mapped[str | None] = mapped_column(Text, nullable=True)
    finding_note: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # An `unjustified` finding ends the grant at once: reads under it fail from then on.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_emergency_grants_referral_id_agency_id_expires_at", "referral_id", "agency_id", "expires_at"),
        Index("ix_emergency_grants_reviewed_at", "reviewed_at"),
        Index("ix_emergency_grants_agency_id_granted_at", "agency_id", "granted_at"),
    )


class EmergencyNotice(Base):
    """A change-feed entry: the referral's owner agency and its network's coordinator are told."""

    __tablename__ = "emergency_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("emergency_grants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # emergency_access | emergency_revoked
    agency_id: Mapped[str] = mapped_column(String(64))  # the agency that broke the glass
    by_agency: Mapped[str] = mapped_column(String(64))  # who acted: that agency, or the auditor's
    status: Mapped[str] = mapped_column(String(40))  # the referral's status at the time
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class AgencyFlag(Base):
    """An agency whose emergency access an auditor found unjustified, until an auditor clears it."""

    __tablename__ = "emergency_agency_flags"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    network_id: Mapped[str] = mapped_column(String(64))
    # No foreign key: the flag outlives the grant (erasing the person deletes the grant).
    grant_id: Mapped[str] = mapped_column(String(40))
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    flagged_by: Mapped[str] = mapped_column(String(64))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
