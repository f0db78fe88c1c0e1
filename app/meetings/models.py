"""Meeting tables: the meeting, its agenda items, the minutes entries, actions and clock notices.

Free text (minutes, an action's description and completion note) is sealed with the person's
data key, bound to its row: erasing the person shreds it, and the purge deletes the rows with
the referral (app/retention/shred.py).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Meeting(Base):
    """A case conference of one network, chaired by its chair agency (the coordinator by default)."""

    __tablename__ = "meetings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    network_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # regular | emergency
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))  # scheduled | closed
    created_by_agency: Mapped[str] = mapped_column(String(64))
    created_by_client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class AgendaItem(Base):
    """One referral on a meeting's agenda: why, who is invited to it, who came, what was decided."""

    __tablename__ = "meeting_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(40))  # newly_triaged | review_due | repeat_referral | ...
    invited: Mapped[list[str]] = mapped_column(JSON)
    attended: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    decision: Mapped[str | None] = mapped_column(String(40), nullable=True)

    __table_args__ = (UniqueConstraint("meeting_id", "number", name="uq_meeting_items_number"),
                      UniqueConstraint("meeting_id", "referral_id", name="uq_meeting_items_referral"))


class MinutesEntry(Base):
    """Minutes of an agenda item: appended, never changed; after the meeting closes, corrections."""

    __tablename__ = "meeting_minutes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("meeting_items.id", ondelete="CASCADE"), index=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # minutes | correction
    text: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # sealed, bound to the row id
    decision: Mapped[str | None] = mapped_column(String(40), nullable=True)
    by_agency: Mapped[str] = mapped_column(String(64))
    by_client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CaseAction(Base):
    """A task on a referral: an owner agency, a due date, a status; overdue is the clock's."""

    __tablename__ = "case_actions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(String(64), index=True)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_items.id", ondelete="SET NULL"), nullable=True, index=True
    )
    description: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # sealed
    owner_agency: Mapped[str] = mapped_column(String(64), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), index=True)  # one of the protocol's action statuses
    completion_note: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # sealed
    created_by_agency: Mapped[str] = mapped_column(String(64))
    created_by_client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ClockNotice(Base):
    """Something a network's clock found due (app/meetings/clocks.py): a change-feed entry for the
    network's coordinator, raised once per referral, kind and due time."""

    __tablename__ = "clock_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    network_id: Mapped[str] = mapped_column(String(64), index=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # triage_overdue | assignment_overdue | review_due | ...
    due_since: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(40))  # the referral's status when raised
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("referral_id", "kind", "due_since", name="uq_clock_notices_due"),)
