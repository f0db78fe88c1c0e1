"""Projection: a referral rendered with only the fields a grant allows, decrypting only those."""

from __future__ import annotations

from typing import Any

from app.crypto.aead import DecryptionError
from app.crypto.envelope import Envelope
from app.errors import IntegrityFailure
from app.referrals.schemas import IDENTITY_FIELDS, SCHEMA_ID
from app.referrals.snapshot import AnyReferral, AnySubject
from app.subjects import service as subjects

_IDENTITY_PATHS = frozenset(f"subject.{name}" for name in IDENTITY_FIELDS)


def _history(referral: AnyReferral) -> list[dict[str, Any]]:
    return [
        {
            "from_status": h.from_status, "status": h.to_status, "at": h.at.isoformat(),
            "by_agency": h.by_agency, "reason": h.reason, "outcome": h.outcome,
            "agencies": list(h.agencies), "to_network": h.to_network,
        }
        for h in referral.history
    ]


_PLAIN: dict[str, Any] = {
    "schema": lambda r: r.schema_id or SCHEMA_ID,
    "referring_agency": lambda r: r.referring_agency,
    "referring_person": lambda r: r.referring_person,
    "concerns": lambda r: list(r.concerns),
    "vulnerability_factors": lambda r: list(r.vulnerability_factors),
    "protective_factors": lambda r: list(r.protective_factors),
    "risk_level": lambda r: r.risk_level,
    "urgency": lambda r: r.urgency,
    "consent": lambda r: dict(r.consent),
    "requested_services": lambda r: list(r.requested_services),
    "intervention_type": lambda r: r.intervention_type,
    "do_not_contact": lambda r: r.do_not_contact,
    "code_system": lambda r: r.code_system,
    "original_codes": lambda r: dict(r.original_codes),
    "status": lambda r: r.status,
    "status_history": _history,
    "outcome": lambda r: r.outcome,
    "assigned_agencies": lambda r: r.assigned_agencies,
    "created_at": lambda r: r.created_at.isoformat(),
    "updated_at": lambda r: r.updated_at.isoformat(),
}


def render_referral(
    referral: AnyReferral, subject: AnySubject, envelope: Envelope, fields: frozenset[str]
) -> dict[str, Any]:
    """The referral document restricted to `fields`; nothing outside them is even decrypted."""
    document: dict[str, Any] = {"id": referral.id}
    for name, getter in _PLAIN.items():
        if name in fields:
            document[name] = getter(referral)
    if "narrative" in fields:
        document["narrative"] = _narrative(referral, subject, envelope)
    subject_part: dict[str, Any] = {}
    if "subject.id" in fields:
        subject_part["id"] = subject.id
    if "subject.age_band" in fields:
        subject_part["age_band"] = subject.age_band
    if "subject.district" in fields:
        subject_part["district"] = subject.district
    wanted_identity = fields & _IDENTITY_PATHS
    if wanted_identity:
        identity = subjects.read_identity(envelope, subject)
        for path in sorted(wanted_identity):
            name = path.removeprefix("subject.")
            subject_part[name] = identity.get(name)
    if subject_part:
        document["subject"] = subject_part
    return document


def _narrative(referral: AnyReferral, subject: AnySubject, envelope: Envelope) -> str | None:
    from app.referrals.service import NARRATIVE_CONTEXT

    if referral.narrative is None:
        return None
    key = subjects.data_key(envelope, subject)
    try:
        return key.open(referral.narrative, f"{NARRATIVE_CONTEXT}:{referral.id}").decode()
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None


def render_status(referral: AnyReferral, fields: frozenset[str]) -> dict[str, Any]:
    document: dict[str, Any] = {"id": referral.id}
    for name, getter in _PLAIN.items():
        if name in fields:
            document[name] = getter(referral)
    return document
