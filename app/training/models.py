"""Training records: one row per completion of a course by a person."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class TrainingRecord(Base):
    """A completion; a later completion of the same course by the same person supersedes it."""

    __tablename__ = "training_records"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Not a foreign key: an API client's `act` names a person the service need not know.
    person_id: Mapped[str] = mapped_column(String(64))
    # The agency the person was of when recorded: the course counts only for callers of that agency
    # (a client of another naming the person in `act` borrows nothing). None: a record from before
    # migration 0019 of a person the service did not know, which counts for nobody.
    agency_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    course_id: Mapped[str] = mapped_column(String(64))
    completed_on: Mapped[date] = mapped_column(Date())
    expires_on: Mapped[date | None] = mapped_column(Date(), nullable=True)  # none: never expires
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(10))  # console | api | import

    __table_args__ = (Index("ix_training_records_person_id_course_id", "person_id", "course_id"),)
