"""Referral tables: the referral, its status history, assignments, and concern index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


class Referral(Base):
    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    schema_id: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    # The network whose agreements decide it: chosen at creation, changed only by a transfer.
    network_id: Mapped[str] = mapped_column(String(64), index=True)
    referring_agency: Mapped[str] = mapped_column(ForeignKey("agencies.id"), index=True)
    referring_client: Mapped[str] = mapped_column(String(64))
    # Free text (app/referrals/sealed.py): sealed with the subject's data key, like the narrative.
    referring_person: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    concerns: Mapped[list[str]] = mapped_column(JSON)
    vulnerability_factors: Mapped[list[str]] = mapped_column(JSON)
    protective_factors: Mapped[list[str]] = mapped_column(JSON)
    risk_level: Mapped[str] = mapped_column(String(40), index=True)
    urgency: Mapped[str] = mapped_column(String(40))
    # status, legal_basis, recorded_at; who recorded it is free text, sealed in its own column.
    consent: Mapped[dict[str, Any]] = mapped_column(JSON)
    consent_recorded_by: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    consent_status: Mapped[str] = mapped_column(String(40))
    requested_services: Mapped[list[str]] = mapped_column(JSON)
    intervention_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Free text often names people: sealed with the subject's data key.
    narrative: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # referral/v2's risk assessment and interventions (app/referrals/sections.py), sealed like the narrative.
    sections: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The subject as THIS referral described them (app/subjects/submissions.py): every subject.*
    # field renders from here, never from what another referral said about the person.
    subject_submission: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    subject_age_band: Mapped[str | None] = mapped_column(String(20), nullable=True)
    subject_district: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Known subjects its identifiers pointed to when they named more than one: it was left
    # unlinked, for the coordinator to resolve.
    link_conflicts: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    code_system: Mapped[str | None] = mapped_column(String(64), nullable=True)
    original_codes: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(40), index=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the agreements in force let it go (app/retention/dates.py); NULL: not yet computed.
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)

    history: Mapped[list[StatusChange]] = relationship(
        order_by="StatusChange.id", cascade="all, delete-orphan", passive_deletes=True
    )
    assignments: Mapped[list[Assignment]] = relationship(
        order_by="Assignment.agency_id", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (Index("ix_referrals_updated_at_id", "updated_at", "id"),)

    @property
    def assigned_agencies(self) -> list[str]:
        return [a.agency_id for a in self.assignments]


class StatusChange(Base):
    """One step of a referral's lifecycle; also the change feed's rows."""

    __tablename__ = "referral_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(40), nullable=True)
    to_status: Mapped[str] = mapped_column(String(40))
    # Sealed with the subject's data key (app/referrals/sealed.py), bound to this row's id.
    reason: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agencies: Mapped[list[str]] = mapped_column(JSON)
    to_network: Mapped[str | None] = mapped_column(String(200), nullable=True)
    by_agency: Mapped[str] = mapped_column(String(64))
    by_client: Mapped[str] = mapped_column(String(64))
    by_person: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Assignment(Base):
    __tablename__ = "referral_assignments"

    referral_id: Mapped[str] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True
    )
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"), primary_key=True, index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReferralConcern(Base):
    """One row per concern code, so lists can filter by concern on every backend."""

    __tablename__ = "referral_concerns"

    referral_id: Mapped[str] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True
    )
    concern: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Assessment(Base):
    """A re-assessment of a referral: the assessed values after it, who made it, when, and why.

    The referral's own columns hold the current values (what agreements' `when` conditions
    see); these rows are their history. The reason and the acting person are sealed with the
    subject's data key, bound to (referral, number): erasing the person shreds them.
    """

    __tablename__ = "referral_assessments"

    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1, 2, ... per referral
    risk_level: Mapped[str] = mapped_column(String(40))
    concerns: Mapped[list[str]] = mapped_column(JSON)
    vulnerability_factors: Mapped[list[str]] = mapped_column(JSON)
    protective_factors: Mapped[list[str]] = mapped_column(JSON)
    intervention_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    by_agency: Mapped[str] = mapped_column(String(64))
    by_client: Mapped[str] = mapped_column(String(64))
    by_person: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
