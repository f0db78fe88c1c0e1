"""What each partner agency has received, so a withdrawal can reach it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class PartnerDisclosure(Base):
    """A summary handed to an agency; withdrawn_at is when it lost the right to keep it."""

    __tablename__ = "partner_disclosures"

    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), primary_key=True)
    # Not a foreign key: the notice must outlive a purged or erased referral.
    referral_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    first_disclosed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_disclosed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_partner_disclosures_agency_id_withdrawn_at", "agency_id", "withdrawn_at"),)
