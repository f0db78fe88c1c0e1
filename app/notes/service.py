"""Note rules: who may add one, who may read which, and corrections as new notes."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.crypto.aead import DecryptionError
from app.crypto.envelope import Envelope
from app.errors import BadRequest, Forbidden, IntegrityFailure, InvalidInput, NotFound
from app.notes.models import Note
from app.notes.schemas import SCHEMA_ID, NoteIn
from app.pagination import decode_cursor, encode_cursor
from app.policy.decision import Decision
from app.policy.policy_set import PolicySet
from app.referrals.models import Referral
from app.subjects import service as subjects
from app.subjects.models import Subject
from app.vocabularies.catalog import vocabularies

TEXT_CONTEXT = "note.text"
WRITER_ROLES = frozenset({"referrer", "caseworker", "coordinator"})
# Who adds a note: the referring agency, an assigned agency, or the network's coordinator.
WRITER_RELATIONS = frozenset({"owner", "referrer", "assigned", "coordinator"})


def authorize_add(policies: PolicySet, principal: Principal, referral: Referral, today: date) -> None:
    """Decided like a read: a party in force of the referral's network, holding a writer's
    relation to it and a role that writes notes."""
    access.authorize_change(policies, principal, referral, today, action="Adding a note", needs=WRITER_RELATIONS)
    if principal.roles.isdisjoint(WRITER_ROLES):
        raise access.ChangeDenied(
            f"Adding a note needs one of the roles: {', '.join(sorted(WRITER_ROLES))}.",
            owner_agency=referral.referring_agency, subject_id=referral.subject_id, network=referral.network_id,
        )


def add(
    session: Session, envelope: Envelope, principal: Principal, referral: Referral, data: NoteIn, now: datetime,
    *, policies: PolicySet,
) -> Note:
    authorize_add(policies, principal, referral, now.date())
    classes = vocabularies()["note_classification"].codes_set
    if data.classification not in classes:
        raise InvalidInput(
            f"{data.classification!r} is not a note classification.",
            errors=[{"path": "$.classification", "message": "unknown code", "type": "unknown_code",
                     "valid_codes": sorted(classes)}],
        )
    if data.supersedes is not None:
        earlier = session.get(Note, data.supersedes)
        if earlier is None or earlier.referral_id != referral.id:
            raise InvalidInput(
                "supersedes must name an earlier note on the same referral.",
                errors=[{"path": "$.supersedes", "message": "no such note on this referral",
                         "type": "unknown_note"}],
            )
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None
    note_id = "note_" + secrets.token_urlsafe(12)
    key = subjects.data_key(envelope, subject)
    note = Note(
        id=note_id, schema_id=SCHEMA_ID, referral_id=referral.id, author_agency=principal.agency_id,
        author_client=principal.client_id, author_person=data.author_person or principal.act,
        classification=data.classification,
        text=key.seal(data.text.encode(), f"{TEXT_CONTEXT}:{note_id}"),
        supersedes=data.supersedes, created_at=now, retain_until=referral.retain_until,
    )
    session.add(note)
    session.flush()
    return note


def render(note: Note, envelope: Envelope, subject: Subject, superseded_by: str | None = None) -> dict[str, Any]:
    try:
        text = subjects.data_key(envelope, subject).open(note.text, f"{TEXT_CONTEXT}:{note.id}").decode()
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None
    return {
        "id": note.id, "schema": note.schema_id, "referral_id": note.referral_id,
        "author_agency": note.author_agency, "author_person": note.author_person,
        "classification": note.classification, "text": text, "supersedes": note.supersedes,
        "superseded_by": superseded_by, "created_at": note.created_at.isoformat(),
    }


def list_page(
    session: Session, envelope: Envelope, principal: Principal, referral: Referral, purpose: str,
    cursor: str | None, limit: int, policies: PolicySet, today: date,
) -> tuple[list[dict[str, Any]], list[Decision], str | None]:
    """The notes an agreement grants, by classification and authorship; none at all is a 403."""

    def decision(author: str, classification: str) -> Decision:
        return access.decide_note(policies, principal, referral, author, classification, purpose, today)

    scope = access.scope(policies, principal, purpose, "note", today)
    if not scope.relation_free and not access.referral_relations(principal, referral):
        raise Forbidden("No agreement lets you read notes on this referral for this purpose.",
                        slug="access-denied")
    query = select(Note).where(Note.referral_id == referral.id)
    position = decode_cursor(cursor)
    if position is not None:
        try:
            at, last = datetime.fromisoformat(position["c"]), str(position["i"])
        except (KeyError, ValueError, TypeError):
            raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor") from None
        query = query.where(or_(Note.created_at > at, and_(Note.created_at == at, Note.id > last)))
    rows = list(session.scalars(query.order_by(Note.created_at, Note.id)))
    decided = [(n, decision(n.author_agency, n.classification)) for n in rows]
    visible = [(n, d) for n, d in decided if d.permit]
    page = [n for n, _ in visible[:limit]]
    corrections = dict(session.execute(
        select(Note.supersedes, Note.id).where(Note.supersedes.in_([n.id for n in page]))
    ).all())
    subject = session.get(Subject, referral.subject_id)
    if subject is None:
        raise NotFound("No such referral.")
    items = [render(n, envelope, subject, corrections.get(n.id)) for n in page]
    decisions = [d for _, d in visible[:limit]]
    next_cursor = (
        encode_cursor({"c": page[-1].created_at.isoformat(), "i": page[-1].id})
        if len(visible) > limit else None
    )
    return items, decisions, next_cursor
