"""Emergency grants: who broke the glass, on what, until when, and the auditor's finding."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
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
    finding: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_emergency_grants_referral_id_agency_id_expires_at", "referral_id", "agency_id", "expires_at"),
        Index("ix_emergency_grants_reviewed_at", "reviewed_at"),
    )
