"""Creating, linking and reading subjects; identity is sealed with the subject's own key."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.crypto.aead import DecryptionError
from app.crypto.envelope import BlindIndex, DataKey, Envelope, WrappedKey, normalise_identifier
from app.crypto.keyring import KeyKind
from app.errors import Conflict, Gone, IntegrityFailure
from app.referrals.schemas import IDENTITY_FIELDS, SubjectIn
from app.subjects.models import Subject, SubjectIdentifier
from app.vocabularies.catalog import age_band_for

IDENTITY_CONTEXT = "subject.identity"
IDENTIFIER_DOMAIN = "subject-identifier"


def new_subject_id() -> str:
    return "sub_" + secrets.token_urlsafe(12)


def identifier_digest(blind: BlindIndex, system: str, value: str, key_id: str | None = None) -> str:
    return blind.digest(IDENTIFIER_DOMAIN, f"{system}\x00{normalise_identifier(value)}", key_id)


def identifier_digests(blind: BlindIndex, data: SubjectIn) -> list[str]:
    return [identifier_digest(blind, i.system, i.value) for i in data.identifiers]


def lookup_digests(blind: BlindIndex, data: SubjectIn) -> list[str]:
    """Digests under every blind-index key: a re-index after rotation may not have reached a row."""
    return [
        identifier_digest(blind, i.system, i.value, entry.id)
        for i in data.identifiers for entry in blind.keyring.of_kind(KeyKind.blind_index)
    ]


def find_linked(session: Session, digests: list[str]) -> Subject | None:
    if not digests:
        return None
    subject_id = session.scalar(
        select(SubjectIdentifier.subject_id).where(SubjectIdentifier.digest.in_(digests)).limit(1)
    )
    return session.get(Subject, subject_id) if subject_id else None


def data_key(envelope: Envelope, subject: Subject) -> DataKey:
    if subject.wrapped_key is None or subject.kek_id is None:
        raise Gone("This person's data has been erased.", slug="subject-erased")
    try:
        return envelope.unwrap(subject.id, WrappedKey(subject.kek_id, subject.wrapped_key))
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None


def create_or_link(
    session: Session, envelope: Envelope, blind: BlindIndex, data: SubjectIn, now: datetime
) -> Subject:
    """A new subject, or the existing one an identifier links to (its identity updated)."""
    digests = identifier_digests(blind, data)
    subject = find_linked(session, lookup_digests(blind, data))
    incoming = _identity_document(data)
    if subject is None:
        subject = Subject(id=new_subject_id(), created_at=now, updated_at=now)
        key, wrapped = envelope.new_data_key(subject.id)
        subject.wrapped_key, subject.kek_id = wrapped.wrapped, wrapped.kek_id
        identity = incoming
        session.add(subject)
    else:
        key = data_key(envelope, subject)
        identity = _merge(read_identity(envelope, subject), incoming)
        subject.updated_at = now
    subject.identity = key.seal(json.dumps(identity).encode(), IDENTITY_CONTEXT)
    if data.date_of_birth is not None:
        subject.age_band = age_band_for(data.date_of_birth, now.date())
    if data.district is not None:
        subject.district = data.district
    session.flush()
    known = set(session.scalars(
        select(SubjectIdentifier.digest).where(SubjectIdentifier.subject_id == subject.id)
    ))
    for digest in digests:
        if digest not in known:
            session.add(SubjectIdentifier(digest=digest, subject_id=subject.id, key_id=blind.key_id))
            known.add(digest)
    try:
        session.flush()
    except IntegrityError:
        # Another request recorded the same identifier a moment ago: retrying links to it.
        raise Conflict(
            "Another referral about the same person was being recorded at the same time; retry.",
            slug="concurrent-change", headers={"Retry-After": "1"},
        ) from None
    return subject


def read_identity(envelope: Envelope, subject: Subject) -> dict[str, Any]:
    if subject.identity is None:
        raise Gone("This person's data has been erased.", slug="subject-erased")
    try:
        raw = data_key(envelope, subject).open(subject.identity, IDENTITY_CONTEXT)
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None
    identity: dict[str, Any] = json.loads(raw)
    return identity


def _identity_document(data: SubjectIn) -> dict[str, Any]:
    dumped = data.model_dump(mode="json", include=set(IDENTITY_FIELDS))
    return {k: v for k, v in dumped.items() if v not in (None, [])}


def _merge(current: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    # What was recorded first stands; a later referral only fills gaps.
    merged = {**{k: v for k, v in incoming.items() if k != "identifiers"}, **current}
    identifiers = {(i["system"], i["value"]): i for i in current.get("identifiers", [])}
    identifiers.update({(i["system"], i["value"]): i for i in incoming.get("identifiers", [])})
    if identifiers:
        merged["identifiers"] = list(identifiers.values())
    return merged
