"""HTTP: break the glass on a referral; auditors list and review the grants and the flagged agencies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from app import access, disclose
from app.agencies.schemas import Role
from app.audit.events import AuditEvent, EventType
from app.auth.principal import CurrentPrincipal, Principal, require_roles
from app.emergency import service
from app.emergency.schemas import EmergencyRequest, FlagOut, FlagPage, GrantOut, GrantPage, ReviewIn
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
    summary="Request emergency access",
    description=(
        "Break-glass access to one referral under an agreement's emergency section: time-limited, limited"
        " per agency and day, logged, and reviewed by an auditor. Read it with `X-Purpose: emergency`."
    ),
    openapi_extra={"x-case-data": True},
    status_code=status.HTTP_201_CREATED,
    response_model=GrantOut,
    responses={
        403: {"description": "Refused by the agreement's emergency section: your agency is not a party in"
                             " force of the referral's network (`emergency-not-party`); you are not among who"
                             " may ask — roles, sectors, relations (`access-denied`); your agency is flagged"
                             " (`emergency-agency-flagged`); or the referral's status is excluded"
                             " (`emergency-status-excluded`, naming the status)."},
        409: {"description": "Your agency already holds an active grant on this referral"},
        422: {"description": "The reason is not one of substance: the problem's `rule` names the check it"
                             " fails (`min_length`, `max_char_share`, `min_words`)"},
        429: {"description": "Your agency has received `max_per_agency_per_day` grants under this agreement"
                             " in the last 24 hours (`emergency-limit-reached`); `Retry-After` says when the"
                             " next one may be granted. A cap, not a policy refusal, hence 429, not 403.",
              "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}}},
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
        granted = service.request_access(
            session, state.envelope, state.policies.current, principal, referral, body.reason, now
        )
    grant, decision = granted.grant, granted.decision
    # References and field names only: the reason is sealed in the grant row, never logged.
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
            record_ids={"referral_id": referral.id, "grant_id": grant.id, "notice_id": granted.notice.id},
            fields=sorted(grant.fields), expires_at=grant.expires_at.isoformat(), flagged=True,
            **disclose.decision_details(decision),
        ),
    ), now=now)
    return service.render(session, state.envelope, grant, now, with_text=False)


def _position(cursor: str | None, key: str) -> tuple[datetime, str] | None:
    position = decode_cursor(cursor)
    try:
        return (datetime.fromisoformat(position[key]), str(position["i"])) if position else None
    except (KeyError, TypeError, ValueError):
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor") from None


@router.get("/v1/audit/emergency-access", operation_id="list_emergency_grants",
    summary="List emergency grants", response_model=GrantPage,
            tags=["audit"])
def list_emergency_grants(
    request: Request, session: DbSession, state: State, principal: Auditor,
    reviewed: Annotated[bool | None, Query(description="false: grants still to review.")] = None,
    cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT,
) -> GrantPage:
    """Grants on referrals of the networks in which your agency is a party to an agreement in force."""
    now = state.clock()
    after = _position(cursor, "g")
    networks = access.networks_decided_for(state.policies.current, principal, now.date())
    rows = list(service.list_grants(session, networks, reviewed, after, limit + 1))
    page = rows[:limit]
    state.audit.append(session, disclose.change_event(
        principal, EventType.audit_query, subject_id=None, record_ids={"grants": [g.id for g in page]},
        request_id=request.state.request_id, query={"reviewed": reviewed},
    ), now=now)
    last = page[-1] if len(rows) > limit else None
    flags = service.flags_by_grant(session, page)
    return GrantPage(
        items=[service.render(session, state.envelope, g, now, with_text=True, flag_id=flags.get(g.id))
               for g in page],
        next_cursor=encode_cursor({"g": last.granted_at.isoformat(), "i": last.id}) if last else None,
    )


@router.post("/v1/audit/emergency-access/{grant_id}/review", operation_id="review_emergency_grant",
    summary="Review an emergency grant",
             response_model=GrantOut, tags=["audit"],
             responses={403: {"description": "Your agency is not a party in force of the referral's network"},
                        404: {"description": "No such grant"}, 409: {"description": "Already reviewed"}})
def review_emergency_grant(
    request: Request, session: DbSession, state: State, principal: Auditor, grant_id: str, body: ReviewIn
) -> Any:
    """`unjustified` revokes the grant at once (reads under it fail from then) and flags its agency."""
    now = state.clock()
    reviewed = service.review(
        session, state.envelope, state.policies.current, principal, grant_id, body.finding.value, body.note, now
    )
    grant = reviewed.grant
    referral = referrals.load(session, grant.referral_id)
    record_ids: dict[str, Any] = {"grant_id": grant.id, "referral_id": grant.referral_id}
    if reviewed.flag is not None:
        record_ids["flag_id"] = reviewed.flag.id
    if reviewed.notice is not None:
        record_ids["notice_id"] = reviewed.notice.id
    state.audit.append(session, disclose.change_event(
        principal, EventType.change, subject_id=referral.subject_id, record_ids=record_ids,
        request_id=request.state.request_id, action="emergency_review", finding=body.finding.value,
        fields=["finding", "finding_note"] if body.note is not None else ["finding"],
        revoked=reviewed.grant.revoked_at is not None, agency_flagged=grant.agency_id if reviewed.flag else None,
    ), now=now)
    flag_id = reviewed.flag.id if reviewed.flag else None
    return service.render(session, state.envelope, grant, now, with_text=False, flag_id=flag_id)


@router.get("/v1/audit/flagged-agencies", operation_id="list_flagged_agencies",
    summary="List flagged agencies", response_model=FlagPage,
            tags=["audit"])
def list_flagged_agencies(
    request: Request, session: DbSession, state: State, principal: Auditor,
    active: Annotated[bool | None, Query(description="true: flags not yet cleared.")] = None,
    cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT,
) -> FlagPage:
    """Agencies an `unjustified` finding flagged, in networks where your agency is a party in force."""
    now = state.clock()
    after = _position(cursor, "f")
    networks = access.networks_decided_for(state.policies.current, principal, now.date())
    rows = list(service.list_flags(session, networks, active, after, limit + 1))
    page = rows[:limit]
    state.audit.append(session, disclose.change_event(
        principal, EventType.audit_query, subject_id=None, record_ids={"flags": [f.id for f in page]},
        request_id=request.state.request_id, query={"active": active},
    ), now=now)
    last = page[-1] if len(rows) > limit else None
    return FlagPage(
        items=[service.render_flag(f) for f in page],
        next_cursor=encode_cursor({"f": last.flagged_at.isoformat(), "i": last.id}) if last else None,
    )


@router.post("/v1/audit/flagged-agencies/{flag_id}/clear", operation_id="clear_agency_flag",
    summary="Clear an agency's flag", tags=["audit"],
             response_model=FlagOut,
             responses={403: {"description": "Your agency is not a party in force of the flag's network"},
                        404: {"description": "No such flag"}, 409: {"description": "Already cleared"}})
def clear_agency_flag(request: Request, session: DbSession, state: State, principal: Auditor, flag_id: str) -> FlagOut:
    """The agency may ask for emergency access in the network again (where `refuse_flagged` holds)."""
    now = state.clock()
    flag = service.clear_flag(session, state.policies.current, principal, flag_id, now)
    state.audit.append(session, disclose.change_event(
        principal, EventType.change, subject_id=None,
        record_ids={"flag_id": flag.id, "grant_id": flag.grant_id}, request_id=request.state.request_id,
        action="emergency_flag_clear", agency=flag.agency_id,
    ), now=now)
    return service.render_flag(flag)
