"""The one door: case data reaches a caller only in a response built here, after its log entries.

Every record that leaves is a `Released`: its document projected to the caller's grant and the
audit entry that records it. `send` writes the entries (durably, fail closed) and only then
builds the `CaseDataResponse`, the one response type allowed to carry case data; nothing
outside this module can construct either (tests/platform/test_door.py walks every route).
A write whose caller may read nothing of the record gets a `receipt`: id, status and ETag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app import access, disclose
from app.audit.events import AuditEvent, EventType
from app.crypto.envelope import DataKey, Envelope
from app.policy.decision import Decision
from app.referrals.render import render_referral
from app.referrals.snapshot import AnyReferral, AnySubject
from app.state import AppState

_KEY = object()
GRANTED_VIEW = "X-Granted-View"
RECEIPT_FIELDS = ("id", "status")


class CaseDataResponse(JSONResponse):
    """A response carrying case data; only `send` builds one, after the log entries are durable."""

    def __init__(self, content: Any, *, status_code: int, headers: Mapping[str, str], key: object) -> None:
        if key is not _KEY:
            raise TypeError("case data leaves only through app.door.send")
        super().__init__(content, status_code=status_code, headers=dict(headers))

    def render(self, content: Any) -> bytes:
        # The bytes JSONResponse would send for a rendered document (compact UTF-8 of strings, numbers,
        # booleans, nulls, lists and objects), at a tenth of the cost.
        return orjson.dumps(content)


@dataclass(frozen=True, slots=True, init=False)
class Released:
    """One record's part of a response: what leaves, and the entry that records it."""

    document: dict[str, Any]
    event: AuditEvent
    view: str

    def __init__(self, document: dict[str, Any], event: AuditEvent, view: str, *, key: object) -> None:
        if key is not _KEY:
            raise TypeError("only app.door releases case data")
        object.__setattr__(self, "document", document)
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "view", view)


def referral(
    ctx: disclose.ReadContext, grant: access.Grant, record: AnyReferral, subject: AnySubject,
    envelope: Envelope, *, event_type: str | None = None, extra: Mapping[str, Any] | None = None,
    key: DataKey | None = None,
) -> Released:
    """The referral projected to the grant's fields; nothing outside them is even decrypted."""
    document = render_referral(record, subject, envelope, grant.fields, key)
    event = disclose.read_event(
        ctx, grant, owner_agency=record.referring_agency, subject_id=record.subject_id,
        record_ids={"referral_id": record.id}, fields=disclose.paths_of(document),
        event_type=event_type, extra=extra,
    )
    return Released(document, event, grant.decision.view or "", key=_KEY)


def own_submission(
    ctx: disclose.ReadContext, record: AnyReferral, subject: AnySubject, envelope: Envelope,
    fields: frozenset[str], *, event_type: EventType, reason: str, key: DataKey | None = None,
) -> Released:
    """What an agency itself submitted, echoed back to it (a creation or its replay): an access."""
    decision = Decision(True, reason, "permitted", view="submission", fields=fields)
    return referral(ctx, access.Grant(decision, "access"), record, subject, envelope,
                    event_type=event_type.value, extra={"reason": reason}, key=key)


def emergency(
    ctx: disclose.ReadContext, record: AnyReferral, subject: AnySubject, envelope: Envelope, *,
    grant_id: str, agreement_id: str, view: str, fields: frozenset[str], expires_at: str,
) -> Released:
    """A read under an active emergency grant: the grant's view only, logged and flagged."""
    document = render_referral(record, subject, envelope, fields)
    event = AuditEvent(
        event_type=EventType.emergency_read.value, actor_agency=record.referring_agency,
        recipient_agency=ctx.principal.agency_id, purpose=ctx.purpose, decision="permit",
        agreement_id=agreement_id, rule_id="emergency", subject_id=record.subject_id,
        details=ctx.details(record_ids={"referral_id": record.id, "grant_id": grant_id},
                            fields=sorted(disclose.paths_of(document)), view=view, flagged=True,
                            grant_expires_at=expires_at),
    )
    return Released(document, event, view, key=_KEY)


def record_part(
    ctx: disclose.ReadContext, grant: access.Grant, document: dict[str, Any], *, owner_agency: str,
    subject_id: str | None, record_ids: Mapping[str, Any], fields: Sequence[str],
    event_type: str | None = None,
) -> Released:
    """A part of a record already projected to the grant (a note, a feed item, a summary)."""
    event = disclose.read_event(ctx, grant, owner_agency=owner_agency, subject_id=subject_id,
                                record_ids=record_ids, fields=fields, event_type=event_type)
    return Released(document, event, grant.decision.view or "", key=_KEY)


def send(
    state: AppState, session: Session | None, released: Sequence[Released],
    body: Callable[[list[dict[str, Any]]], Any], *, status_code: int = 200,
    headers: Mapping[str, str] | None = None, extra_events: Sequence[AuditEvent] = (),
    then: Callable[[], None] | None = None,
) -> CaseDataResponse:
    """Write every entry (durable before this returns, or with the request's commit), then respond.

    With no session the entries go through the process's committer, durable before anything
    else happens.  ``then`` runs after that and before the response is built: the writes that
    record what is being handed out.  If they fail the request fails, and the log over-states
    what left (an entry for a response never sent), never under-states it.
    """
    events = [*extra_events, *(r.event for r in released)]
    if session is None:
        disclose.commit_reads(state, events)
    else:
        disclose.log_reads(state, session, events)
    if then is not None:
        then()
    return _response(released, body, status_code, headers)


async def send_async(
    state: AppState, released: Sequence[Released], body: Callable[[list[dict[str, Any]]], Any], *,
    status_code: int = 200, headers: Mapping[str, str] | None = None,
) -> CaseDataResponse:
    """`send` for a handler on the event loop, which holds no transaction (app.db.LoopReads)."""
    await disclose.log_reads_async(state, [r.event for r in released])
    return _response(released, body, status_code, headers)


def _response(
    released: Sequence[Released], body: Callable[[list[dict[str, Any]]], Any], status_code: int,
    headers: Mapping[str, str] | None,
) -> CaseDataResponse:
    views = sorted({r.view for r in released if r.view})
    merged = {GRANTED_VIEW: ",".join(views) if views else "none", **(headers or {})}
    return CaseDataResponse(body([r.document for r in released]), status_code=status_code, headers=merged,
                            key=_KEY)


def one(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return documents[0]


def page(next_cursor: str | None) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    return lambda documents: {"items": documents, "next_cursor": next_cursor}


class Receipted(Protocol):
    """A record a write answers for: a referral, a meeting."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...


def receipt(record: Receipted, status_code: int, headers: Mapping[str, str]) -> JSONResponse:
    """What a writer that may read nothing of the record gets back: id, status, ETag (and no case data)."""
    document = {"id": record.id, "status": record.status}
    return JSONResponse(document, status_code=status_code, headers={GRANTED_VIEW: "none", **headers})
