"""Agreement versions as loaded and signed: what is in force survives a restart and a newer file."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime

PROPOSED, IN_FORCE, SUPERSEDED = "proposed", "in_force", "superseded"


class AgreementVersion(Base):
    """One version of an agreement, with the text it was loaded from (no case data).

    The stored text lets a restart rebuild the last signed version while the file already holds
    the next, still proposed, one.
    """

    __tablename__ = "agreement_versions"

    agreement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16))  # proposed | in_force | superseded
    first_loaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AgreementSignature(Base):
    """A party's signature of one version's text (its content hash): who, when and how."""

    __tablename__ = "agreement_signatures"
    __table_args__ = (
        ForeignKeyConstraint(["agreement_id", "version"],
                             ["agreement_versions.agreement_id", "agreement_versions.version"]),
        UniqueConstraint("agreement_id", "version", "content_hash", "agency_id", "person_id",
                         name="uq_agreement_signatures_signer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    agency_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    via: Mapped[str] = mapped_column(String(16))  # api | console | demo
