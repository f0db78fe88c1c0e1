"""HTTP for referrals: create, read, list, move through the lifecycle, follow the change feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app import access, disclose, idempotency
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Caller, CurrentPrincipal, Principal
from app.errors import Forbidden
from app.pagination import DEFAULT_LIMIT, Cursor, Limit
from app.policy.vocabulary import EMERGENCY_PURPOSE
from app.referrals import repository, service
from app.referrals.schemas import (
    ConsentUpdate,
    EventOut,
    EventPage,
    ReferralIn,
    ReferralOut,
    ReferralPage,
    TransitionIn,
)
from app.retention.dates import RetentionRules
from app.state import AppState, DbSession, ReadSession, State

router = APIRouter(tags=["referrals"])
PURPOSE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "X-Purpose missing or not open to the caller"},
    403: {"description": "No agreement grants this read"},
    404: {"description": "No such referral"},
}


ViewParam = Annotated[
    str | None,
    Query(max_length=64, description="Ask for a named view; default: the most detailed one granted."),
]


def _grant_headers(grant: access.Grant) -> dict[str, str]:
    decision = grant.decision
    return {
        "X-Granted-View": decision.view or "",
        "X-Agreement": f"{decision.agreement_id};version={decision.agreement_version}",
    }


def crypto(state: AppState) -> service.Crypto:
    return service.Crypto(state.envelope, state.blind_index)


def retention(state: AppState) -> RetentionRules:
    """The agreements in force, for the retention date every create and change recomputes."""
    return RetentionRules.of(state.policies.current, state.settings.max_open_retention)


def _referral_response(document: dict[str, Any], status_code: int, tag: str, **headers: str) -> JSONResponse:
    return JSONResponse(document, status_code=status_code, headers={"ETag": tag, **headers})


@router.post(
    "/v1/referrals",
    operation_id="create_referral",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralOut,
    responses={409: {"description": "Idempotency-Key reused with another body"},
               422: {"description": "Invalid referral; unknown codes list the valid ones"}},
)
def create_referral(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    body: Annotated[ReferralIn, Body()],
    idempotency_key: idempotency.IdempotencyKey = None,
) -> Any:
    raw = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    key = idempotency.check_key(idempotency_key)
    fingerprint = idempotency.request_hash("POST", "/v1/referrals", raw)
    if key is not None:
        replay = idempotency.find(session, principal.client_id, key, fingerprint)
        if replay is not None:
            referral = service.load(session, replay.resource_id)
            document = service.render_for_owner(session, crypto(state), referral)
            disclose.log_reads(state, session, [disclose.change_event(
                principal, EventType.access, subject_id=referral.subject_id,
                record_ids={"referral_id": referral.id}, request_id=request.state.request_id,
                fields=sorted(disclose.paths_of(document)), reason="idempotent replay of the creating request",
            )])
            return _referral_response(
                document, replay.status_code, service.etag(referral),
                Location=f"/v1/referrals/{referral.id}", **{"Idempotent-Replayed": "true"},
            )
    referral = service.create(
        session, crypto(state), principal, raw, state.clock(), retention=retention(state)
    )
    if key is not None:
        idempotency.remember(session, principal.client_id, key, fingerprint, 201, "referral", referral.id)
    document = service.render_for_owner(session, crypto(state), referral)
    disclose.log_reads(state, session, [disclose.change_event(
        principal, EventType.create, subject_id=referral.subject_id, record_ids={"referral_id": referral.id},
        request_id=request.state.request_id, fields=sorted(disclose.paths_of(document)),
        code_system=referral.code_system,
    )])
    return _referral_response(document, 201, service.etag(referral), Location=f"/v1/referrals/{referral.id}")


@router.get(
    "/v1/referrals/{referral_id}",
    operation_id="get_referral",
    response_model=ReferralOut,
    response_model_exclude_unset=True,
    responses=PURPOSE_ERRORS,
)
async def get_referral(
    request: Request,
    session: ReadSession,
    state: State,
    caller: Caller,
    referral_id: str,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
    view: ViewParam = None,
) -> Any:
    # On the event loop, not in a worker thread: the read is a few indexed statements, and
    # the log entry is awaited from the committer thread (group commit), so the loop is never
    # held by a commit.  Thread hops and their GIL hand-offs cost more than the read itself.
    principal = caller.confirm(session)
    if state.settings.bench_bare_reads and request.headers.get("X-Bench-Bare") == "1":
        # bench/load.py's baseline: the same read and projection with no purpose, policy or log.
        # The setting is refused in prod (app/config.py), so this never runs there.
        snap, document = service.read_in_full(session, crypto(state), referral_id)
        session.commit()
        return _referral_response(document, 200, service.etag(snap))
    policies, now = state.policies.current, state.clock()
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    async with disclose.denials_logged(state, session, ctx, {"referral_id": referral_id}):
        stated = access.require_purpose(policies, principal, purpose, now.date(), allow_emergency=True)
        if stated == EMERGENCY_PURPOSE:
            document, tag, headers, event = _emergency_read(session, state, principal, referral_id, ctx)
        else:
            referral, grant, document = service.read(
                session, crypto(state), principal, referral_id, stated, policies, view, now.date()
            )
            tag, headers = service.etag(referral), _grant_headers(grant)
            event = disclose.read_event(
                ctx, grant, owner_agency=referral.referring_agency, subject_id=referral.subject_id,
                record_ids={"referral_id": referral.id}, fields=grant.fields,
            )
    await disclose.log_reads_async(state, session, [event])
    return _referral_response(document, 200, tag, **headers)


def _emergency_read(
    session: Session, state: AppState, principal: Principal, referral_id: str, ctx: disclose.ReadContext,
) -> tuple[dict[str, Any], str, dict[str, str], AuditEvent]:
    """A read under an active emergency grant: the grant's view only, logged and flagged."""
    from app.emergency import service as emergency

    now = state.clock()
    referral = service.load(session, referral_id)
    grant = emergency.active_grant(session, referral.id, principal.agency_id, now)
    if grant is None:
        raise Forbidden(
            "No active emergency grant: ask for one with POST /v1/referrals/{id}/emergency-access.",
            slug="access-denied",
        )
    document = service.render_fields(session, crypto(state), referral, frozenset(grant.fields))
    event = AuditEvent(
        event_type=EventType.emergency_read.value, actor_agency=referral.referring_agency,
        recipient_agency=principal.agency_id, purpose=EMERGENCY_PURPOSE, decision="permit",
        agreement_id=grant.agreement_id, rule_id="emergency", subject_id=referral.subject_id,
        details=ctx.details(record_ids={"referral_id": referral.id, "grant_id": grant.id},
                            fields=sorted(grant.fields), view=grant.view, flagged=True,
                            grant_expires_at=grant.expires_at.isoformat()),
    )
    return document, service.etag(referral), {"X-Granted-View": grant.view, "X-Emergency-Grant": grant.id}, event


@router.get(
    "/v1/referrals",
    operation_id="list_referrals",
    response_model=ReferralPage,
    responses={400: PURPOSE_ERRORS[400]},
)
def list_referrals(
    request: Request,
    session: ReadSession,
    state: State,
    caller: Caller,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
    status_: Annotated[list[str], Query(alias="status", max_length=10)] = [],  # noqa: B006
    risk_level: Annotated[list[str], Query(max_length=10)] = [],  # noqa: B006
    concern: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    updated_since: Annotated[datetime | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    principal = caller.confirm(session)
    policies, today = state.policies.current, state.clock().date()
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"referrals": "list"}):
        stated = access.require_purpose(policies, principal, purpose, today)
    ctx = disclose.ReadContext(principal, stated, justification, request.state.request_id)
    since = updated_since if updated_since is None or updated_since.tzinfo else updated_since.astimezone()
    f = repository.ReferralFilter(
        statuses=tuple(status_), risk_levels=tuple(risk_level), concerns=tuple(concern), updated_since=since
    )
    page, next_cursor = service.list_page(
        session, crypto(state), principal, stated, f, cursor, limit, policies, today
    )
    disclose.log_reads(state, session, [
        disclose.read_event(ctx, grant, owner_agency=r.referring_agency, subject_id=r.subject_id,
                            record_ids={"referral_id": r.id}, fields=grant.fields)
        for r, grant, _ in page
    ])
    return JSONResponse({"items": [document for _, _, document in page], "next_cursor": next_cursor})


@router.post(
    "/v1/referrals/{referral_id}/transitions",
    operation_id="transition_referral",
    response_model=ReferralOut,
    response_model_exclude_unset=True,
    responses={
        403: {"description": "The caller may not make this transition"},
        409: {"description": "Not allowed from the current status; names the allowed ones"},
        412: {"description": "If-Match does not match the current ETag"},
    },
)
def transition_referral(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    body: TransitionIn,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=200)] = None,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> Any:
    key = idempotency.check_key(idempotency_key)
    fingerprint = idempotency.request_hash(
        "POST", f"/v1/referrals/{referral_id}/transitions", body.model_dump(mode="json")
    )
    replay = idempotency.find(session, principal.client_id, key, fingerprint) if key else None
    if replay is not None:
        referral = service.load(session, referral_id)
        return _referral_response(service.status_view(referral), replay.status_code, service.etag(referral),
                                  **{"Idempotent-Replayed": "true"})
    source = service.load(session, referral_id).status
    referral = service.transition(session, principal, referral_id, body, if_match, state.clock(),
                                  retention=retention(state))
    disclose.log_reads(state, session, [disclose.change_event(
        principal, EventType.transition, subject_id=referral.subject_id, record_ids={"referral_id": referral.id},
        request_id=request.state.request_id, from_status=source, to_status=referral.status,
        agencies=sorted(body.agencies), outcome=body.outcome,
    )])
    if key is not None:
        idempotency.remember(session, principal.client_id, key, fingerprint, 200, "referral", referral.id)
    return _referral_response(service.status_view(referral), 200, service.etag(referral))


@router.post(
    "/v1/referrals/{referral_id}/consent",
    operation_id="update_consent",
    response_model=ReferralOut,
    response_model_exclude_unset=True,
    responses={
        403: {"description": "Only the referring agency or a coordinator records consent"},
        412: {"description": "If-Match does not match the current ETag"},
    },
)
def update_consent(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    body: ConsentUpdate,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=200)] = None,
) -> Any:
    referral = service.update_consent(
        session, principal, referral_id, body, if_match, state.clock(), retention=retention(state)
    )
    disclose.log_reads(state, session, [disclose.change_event(
        principal, EventType.change, subject_id=referral.subject_id, record_ids={"referral_id": referral.id},
        request_id=request.state.request_id, fields=["consent"], consent_status=referral.consent_status,
    )])
    document = {**service.status_view(referral), "consent": dict(referral.consent)}
    return _referral_response(document, 200, service.etag(referral))


@router.get(
    "/v1/events",
    operation_id="list_events",
    response_model=EventPage,
    responses={400: PURPOSE_ERRORS[400]},
)
def list_events(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    purpose: access.PurposeHeader = None,
    after: Annotated[str | None, Query(max_length=512, description="next_cursor of the last page.")] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> EventPage:
    policies, today = state.policies.current, state.clock().date()
    ctx = disclose.ReadContext(principal, purpose or "", None, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"events": "feed"}):
        stated = access.require_purpose(policies, principal, purpose, today)
    ctx = disclose.ReadContext(principal, stated, None, request.state.request_id)
    rows, next_cursor = service.events_page(session, principal, stated, after, limit, policies, today)
    events_by_referral: dict[str, list[int]] = {}
    grants: dict[str, access.Grant] = {}
    for row, grant in rows:
        events_by_referral.setdefault(row.referral_id, []).append(row.id)
        grants[row.referral_id] = grant
    audit_events = []
    for referral_id, event_ids in events_by_referral.items():
        referral = service.load(session, referral_id)
        audit_events.append(disclose.read_event(
            ctx, grants[referral_id], owner_agency=referral.referring_agency, subject_id=referral.subject_id,
            record_ids={"referral_id": referral_id, "event_ids": event_ids},
            fields=sorted({"status", "outcome"} & grants[referral_id].fields),
        ))
    disclose.log_reads(state, session, audit_events)
    return EventPage(
        items=[
            EventOut(id=str(r.id), referral_id=r.referral_id, from_status=r.from_status, status=r.to_status,
                     outcome=r.outcome if "outcome" in grant.fields else None, at=r.at, by_agency=r.by_agency)
            for r, grant in rows
        ],
        next_cursor=next_cursor,
    )


