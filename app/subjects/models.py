"""Subject tables: the person's data key, the sealed identity used for linking, blind-indexed identifiers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Subject(Base):
    """A person referred. What each referral said about them is on the referral, not here.

    `identity` merges what every linked referral submitted; it is never rendered into a
    referral (app/subjects/submissions.py holds each referral's own part). It stays for what
    works on the person rather than on one referral: re-indexing the identifiers under a new
    blind-index key (app/crypto/rotation.py), a future copy of the person's data for a
    subject-access request, and a coordinator comparing two records before a merge.
    """

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The data key, wrapped by a key-encryption key; destroying it erases the person.
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    kek_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Names, birth date, contact, address, identifiers, ethnicity, religion: one sealed JSON.
    identity: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
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
