"""Who accepted which version of a network's code of conduct, and when (the audit log holds the same)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class ConductAcceptance(Base):
    __tablename__ = "conduct_acceptances"
    __table_args__ = (UniqueConstraint("person_id", "network_id", "version", "content_hash",
                                       name="uq_conduct_acceptances_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the version's texts, every language
    language: Mapped[str] = mapped_column(String(16))  # the language the text was shown in
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
