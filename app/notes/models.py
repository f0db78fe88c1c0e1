"""The notes table: append-only, text sealed with the subject's data key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    schema_id: Mapped[str] = mapped_column(String(40))
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    author_agency: Mapped[str] = mapped_column(ForeignKey("agencies.id"))
    author_client: Mapped[str] = mapped_column(String(64))
    author_person: Mapped[str | None] = mapped_column(String(200), nullable=True)
    classification: Mapped[str] = mapped_column(String(40))
    text: Mapped[bytes] = mapped_column(LargeBinary)
    supersedes: Mapped[str | None] = mapped_column(ForeignKey("notes.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Notes follow their referral's retention.
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_notes_referral_id_created_at", "referral_id", "created_at"),)
