"""Projection: a referral rendered with only the fields a grant allows, decrypting only those."""

from __future__ import annotations

from typing import Any

from app.crypto.aead import DecryptionError
from app.crypto.envelope import DataKey, Envelope
from app.errors import IntegrityFailure
from app.referrals import sealed, sections
from app.referrals.schemas import IDENTITY_FIELDS, SCHEMA_ID, V2_SECTIONS
from app.referrals.snapshot import AnyReferral, AnySubject
from app.subjects import submissions

_IDENTITY_PATHS = frozenset(f"subject.{name}" for name in IDENTITY_FIELDS)
_SECTIONS = frozenset(V2_SECTIONS)  # referral/v2's, sealed together: opened only when a view names one


def _history(referral: AnyReferral, opener: sealed.Opener | None) -> list[dict[str, Any]]:
    return [
        {
            "from_status": h.from_status, "status": h.to_status, "at": h.at.isoformat(),
            "by_agency": h.by_agency,
            "reason": _open(opener, h.reason, sealed.on_step(sealed.STEP_REASON, referral.id, h.id)),
            "outcome": h.outcome, "agencies": list(h.agencies), "to_network": h.to_network,
        }
        for h in referral.history
    ]


def _consent(referral: AnyReferral, opener: sealed.Opener | None) -> dict[str, Any]:
    context = sealed.on_referral(sealed.CONSENT_RECORDED_BY, referral.id)
    return {**referral.consent, "recorded_by": _open(opener, referral.consent_recorded_by, context)}


def _referring_person(referral: AnyReferral, opener: sealed.Opener | None) -> str | None:
    return _open(opener, referral.referring_person, sealed.on_referral(sealed.REFERRING_PERSON, referral.id))


def _open(opener: sealed.Opener | None, value: bytes | None, context: str) -> str | None:
    # Without an opener (a status view) sealed text stays sealed: it is shown as absent.
    return None if opener is None else opener.text(value, context)


_PLAIN: dict[str, Any] = {
    "schema": lambda r: r.schema_id or SCHEMA_ID,
    "network": lambda r: r.network_id,
    "referring_agency": lambda r: r.referring_agency,
    "concerns": lambda r: list(r.concerns),
    "vulnerability_factors": lambda r: list(r.vulnerability_factors),
    "protective_factors": lambda r: list(r.protective_factors),
    "risk_level": lambda r: r.risk_level,
    "urgency": lambda r: r.urgency,
    "requested_services": lambda r: list(r.requested_services),
    "intervention_type": lambda r: r.intervention_type,
    "do_not_contact": lambda r: r.do_not_contact,
    "code_system": lambda r: r.code_system,
    "original_codes": lambda r: dict(r.original_codes),
    "status": lambda r: r.status,
    "outcome": lambda r: r.outcome,
    "assigned_agencies": lambda r: r.assigned_agencies,
    "link_conflicts": lambda r: list(r.link_conflicts or []),
    "created_at": lambda r: r.created_at.isoformat(),
    "updated_at": lambda r: r.updated_at.isoformat(),
}
# Fields holding free text sealed with the subject's key: opened only when the view names them.
_SEALED: dict[str, Any] = {
    "referring_person": _referring_person,
    "consent": _consent,
    "status_history": _history,
}


def render_referral(
    referral: AnyReferral, subject: AnySubject, envelope: Envelope, fields: frozenset[str],
    key: DataKey | None = None,
) -> dict[str, Any]:
    """The referral document restricted to `fields`; nothing outside them is even decrypted.

    ``key``: the subject's data key, when the caller has it unwrapped already (a creation).
    """
    document: dict[str, Any] = {"id": referral.id}
    for name, getter in _PLAIN.items():
        if name in fields:
            document[name] = getter(referral)
    opener = sealed.Opener(envelope, subject, key)
    for name, sealed_getter in _SEALED.items():
        if name in fields:
            document[name] = sealed_getter(referral, opener)
    if "narrative" in fields:
        document["narrative"] = _narrative(referral, opener)
    if fields & _SECTIONS and referral.schema_id != SCHEMA_ID:  # a v1 referral reads as v1 did
        stored = sections.open_sections(opener.key(), referral.id, referral.sections)
        document.update({name: stored[name] for name in sorted(fields & _SECTIONS)})
    subject_part = _subject_part(referral, subject, envelope, fields, opener)
    if subject_part:
        document["subject"] = subject_part
    return document


def _subject_part(
    referral: AnyReferral, subject: AnySubject, envelope: Envelope, fields: frozenset[str], opener: sealed.Opener
) -> dict[str, Any]:
    """The subject as THIS referral submitted it; only `id` is shared with the person's other referrals.

    Never the subject's merged identity: a referral linked to a known person by an identifier
    would otherwise show what other agencies said about them (app/subjects/submissions.py).
    """
    part: dict[str, Any] = {}
    if "subject.id" in fields:
        part["id"] = subject.id
    if "subject.age_band" in fields:
        part["age_band"] = referral.subject_age_band
    if "subject.district" in fields:
        part["district"] = referral.subject_district
    wanted = fields & _IDENTITY_PATHS
    if wanted:
        submitted = submissions.read(envelope, referral, subject, key=opener.key())
        for path in sorted(wanted):
            name = path.removeprefix("subject.")
            part[name] = submitted.get(name)
    return part


def _narrative(referral: AnyReferral, opener: sealed.Opener) -> str | None:
    from app.referrals.service import NARRATIVE_CONTEXT

    if referral.narrative is None:
        return None
    key = opener.key()  # the one unwrap this rendering makes
    try:
        return key.open(referral.narrative, f"{NARRATIVE_CONTEXT}:{referral.id}").decode()
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None


def render_status(referral: AnyReferral, fields: frozenset[str]) -> dict[str, Any]:
    """Where a referral stands, without its subject's key: free text is shown as absent."""
    document: dict[str, Any] = {"id": referral.id}
    for name, getter in _PLAIN.items():
        if name in fields:
            document[name] = getter(referral)
    for name, sealed_getter in _SEALED.items():
        if name in fields:
            document[name] = sealed_getter(referral, None)
    return document
