"""HTTP for notes on a referral: add one, list those the caller may read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from app import access, disclose, door, idempotency
from app.audit.events import EventType
from app.auth.principal import CurrentPrincipal
from app.notes import service
from app.notes.models import Note
from app.notes.schemas import NoteIn, NoteOut, NotePage
from app.pagination import DEFAULT_LIMIT, Cursor, Limit
from app.policy.decision import Decision
from app.referrals import service as referrals
from app.state import DbSession, State
from app.subjects.models import Subject

router = APIRouter(tags=["notes"])
NOTE_FIELDS = ("note.text", "note.classification", "note.author_person")


@router.post(
    "/v1/referrals/{referral_id}/notes",
    operation_id="create_note",
    summary="Add a note to a referral",
    description=(
        "Adds a classified note to a referral you are involved in; it is shared as the agreements allow "
        "for its classification."
    ),
    openapi_extra={"x-required-roles": ["caseworker", "coordinator", "referrer"], "x-case-data": True,
                   "x-server-side-rules": ["`supersedes` names an earlier note on the same referral"]},
    status_code=status.HTTP_201_CREATED,
    response_model=NoteOut,
    responses={403: {"description": "Not involved in this referral"}, 404: {"description": "No such referral"}},
)
def create_note(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    body: NoteIn,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> Any:
    key = idempotency.check_key(idempotency_key)
    fingerprint = idempotency.request_hash(
        "POST", f"/v1/referrals/{referral_id}/notes", body.model_dump(mode="json", by_alias=True)
    )
    referral = referrals.load(session, referral_id)
    replay = idempotency.find(session, principal.client_id, key, fingerprint) if key else None
    if replay is not None:
        # A replay is decided again: a writer that lost its relation since gets nothing back.
        service.authorize_add(state.policies.current, principal, referral, state.clock().date())
        note = session.get(Note, replay.resource_id)
        assert note is not None
        headers = {"Idempotent-Replayed": "true"}
    else:
        note = service.add(session, state.envelope, principal, referral, body, state.clock(),
                           policies=state.policies.current)
        disclose.log_reads(state, session, [disclose.change_event(
            principal, EventType.create, subject_id=referral.subject_id,
            record_ids={"referral_id": referral.id, "note_id": note.id}, request_id=request.state.request_id,
            classification=note.classification, supersedes=note.supersedes,
        )])
        if key is not None:
            idempotency.remember(session, principal.client_id, key, fingerprint, 201, "note", note.id)
        headers = {}
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None
    # The author's own note, echoed back to it (also on a replay): an access, logged like any other.
    ctx = disclose.ReadContext(principal, "", None, request.state.request_id)
    reason = "idempotent replay of the creating request" if headers else "created"
    own = access.Grant(Decision(True, reason, "permitted", view="own-note"), "access")
    released = door.record_part(
        ctx, own, service.render(note, state.envelope, subject), owner_agency=note.author_agency,
        subject_id=referral.subject_id, record_ids={"referral_id": referral.id, "note_id": note.id},
        fields=NOTE_FIELDS,
    )
    return door.send(state, session, [released], door.one, status_code=201, headers=headers)


@router.get(
    "/v1/referrals/{referral_id}/notes",
    operation_id="list_notes",
    summary="List a referral's notes",
    description=(
        "The notes of one referral that the agreements grant you for the stated purpose; the read is "
        "logged."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=NotePage,
    responses={400: {"description": "X-Purpose missing or unknown"}, 403: {"description": "Not granted"}},
)
def list_notes(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    policies, today = state.policies.current, state.clock().date()
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"referral_id": referral_id, "notes": "list"}):
        stated = access.require_purpose(policies, principal, purpose, today)
        referral = referrals.load(session, referral_id)
        items, decisions, next_cursor = service.list_page(
            session, state.envelope, principal, referral, stated, cursor, limit, policies, today
        )
    ctx = disclose.ReadContext(principal, stated, justification, request.state.request_id)
    released = [
        door.record_part(
            ctx, access.Grant(decision, "access" if item["author_agency"] == principal.agency_id else "disclosure"),
            item, owner_agency=item["author_agency"], subject_id=referral.subject_id,
            record_ids={"referral_id": referral.id, "note_id": item["id"]}, fields=NOTE_FIELDS,
        )
        for item, decision in zip(items, decisions, strict=True)
    ]
    return door.send(state, session, released, door.page(next_cursor))
