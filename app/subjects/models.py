"""Subject tables: encrypted identity, derived sharing fields, blind-indexed identifiers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Subject(Base):
    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The data key, wrapped by a key-encryption key; destroying it erases the person.
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    kek_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Names, birth date, contact, address, identifiers, ethnicity, religion: one sealed JSON.
    identity: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    age_band: Mapped[str | None] = mapped_column(String(20), nullable=True)
    district: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The latest retain_until of the subject's referrals (app/retention/dates.py).
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)


class SubjectIdentifier(Base):
    """An agency-supplied identifier, kept only as a keyed digest for linking referrals."""

    __tablename__ = "subject_identifiers"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(String(40))
