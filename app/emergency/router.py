"""HTTP: break the glass on a referral; auditors list and review the grants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from app import disclose
from app.agencies.schemas import Role
from app.audit.events import AuditEvent, EventType
from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.emergency import service
from app.emergency.schemas import EmergencyRequest, GrantOut, GrantPage, ReviewIn
from app.errors import BadRequest
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from app.policy.vocabulary import EMERGENCY_PURPOSE
from app.referrals import service as referrals
from app.state import DbSession, State

router = APIRouter(tags=["emergency"])
Auditor = Annotated[Principal, Depends(require_roles(Role.auditor))]


@router.post(
    "/v1/referrals/{referral_id}/emergency-access",
    operation_id="request_emergency_access",
    status_code=status.HTTP_201_CREATED,
    response_model=GrantOut,
    responses={
        403: {"description": "The agreement does not let your role break the glass"},
        409: {"description": "Your agency already holds an active grant"},
        422: {"description": "A reason of at least 20 characters is required"},
    },
)
def request_emergency_access(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, referral_id: str,
    body: EmergencyRequest,
) -> GrantOut:
    now = state.clock()
    ctx = disclose.ReadContext(principal, EMERGENCY_PURPOSE, None, request.state.request_id)
    referral = referrals.load(session, referral_id)
    with disclose.denials_logged(state, session, ctx, {"referral_id": referral_id}, extra_refusals=True):
        grant, decision = service.request_access(
            session, state.envelope, state.policies.current, principal, referral, body.reason, now
        )
    state.audit.append(session, AuditEvent(
        event_type=EventType.emergency_grant.value,
        actor_agency=referral.referring_agency,
        recipient_agency=principal.agency_id,
        purpose=EMERGENCY_PURPOSE,
        decision="permit",
        agreement_id=decision.agreement_id,
        rule_id=decision.rule_ids[0] if decision.rule_ids else None,
        subject_id=referral.subject_id,
        details=ctx.details(
            record_ids={"referral_id": referral.id, "grant_id": grant.id}, fields=sorted(grant.fields),
            reason=body.reason, expires_at=grant.expires_at.isoformat(), flagged=True,
            **disclose.decision_details(decision),
        ),
    ), now=now)
    return service.render(session, state.envelope, grant, now, with_reason=False)


@router.get("/v1/audit/emergency-access", operation_id="list_emergency_grants", response_model=GrantPage,
            tags=["audit"])
def list_emergency_grants(
    session: DbSession, state: State, principal: Auditor,
    reviewed: Annotated[bool | None, Query(description="false: grants still to review.")] = None,
    cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT,
) -> GrantPage:
    now = state.clock()
    position = decode_cursor(cursor)
    try:
        after = (datetime.fromisoformat(position["g"]), str(position["i"])) if position else None
    except (KeyError, TypeError, ValueError):
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor") from None
    rows = list(service.list_grants(session, reviewed, after, limit + 1))
    page = rows[:limit]
    state.audit.append(session, disclose.change_event(
        principal, EventType.audit_query, subject_id=None, record_ids={"grants": [g.id for g in page]},
        request_id=None, query={"reviewed": reviewed},
    ), now=now)
    last = page[-1] if len(rows) > limit else None
    return GrantPage(
        items=[service.render(session, state.envelope, g, now, with_reason=True) for g in page],
        next_cursor=encode_cursor({"g": last.granted_at.isoformat(), "i": last.id}) if last else None,
    )


@router.post("/v1/audit/emergency-access/{grant_id}/review", operation_id="review_emergency_grant",
             response_model=GrantOut, tags=["audit"],
             responses={404: {"description": "No such grant"}, 409: {"description": "Already reviewed"}})
def review_emergency_grant(
    session: DbSession, state: State, principal: Auditor, grant_id: str, body: ReviewIn
) -> Any:
    now = state.clock()
    grant = service.review(session, principal, grant_id, body.finding, now)
    state.audit.append(session, disclose.change_event(
        principal, EventType.change, subject_id=None, record_ids={"grant_id": grant.id},
        request_id=None, action="emergency_review",
    ), now=now)
    return service.render(session, state.envelope, grant, now, with_reason=False)
