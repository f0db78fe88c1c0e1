"""HTTP for legal holds: a network's coordinator holds its referrals, operators hold agencies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from app import access, disclose, door
from app.auth.principal import AdminPrincipal, CurrentPrincipal, Principal
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from app.referrals import service as referrals
from app.retention import holds
from app.retention.models import LegalHold
from app.retention.schemas import CaseHoldIn, HoldIn, HoldOut, HoldPage, LiftIn
from app.state import DbSession, State

router = APIRouter(tags=["legal-holds"])
Active = Annotated[bool, Query(description="Only holds not lifted.")]
CASE_HOLD_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not the coordinator of the referral's network (or an admin: never case data)"},
    404: {"description": "No such referral or hold"},
    410: {"description": "The referral was purged or erased"},
}
AGENCY_HOLD_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not an admin, or a referral's hold (its network coordinator's)"},
    404: {"description": "No such hold"},
}


def _after(cursor: str | None) -> str | None:
    position = decode_cursor(cursor)
    return str(position.get("id", "")) if position else None


def _log(
    state: State, session: DbSession, principal: Principal, hold: LegalHold, action: str,
    subject_id: str | None, request: Request,
) -> None:
    state.audit.append(
        session, holds.hold_event(principal, hold, action, subject_id, request.state.request_id), now=state.clock()
    )


@router.get("/v1/admin/legal-holds", operation_id="list_legal_holds",
    summary="List agency-wide legal holds", response_model=HoldPage)
def list_legal_holds(
    session: DbSession,
    _: AdminPrincipal,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    active: Active = True,
) -> HoldPage:
    """Agency-wide holds (an operator's); a referral's holds are its network coordinator's."""
    rows = holds.page(session, active_only=active, after=_after(cursor), limit=limit + 1, scope="agency")
    items = [HoldOut.model_validate(holds.out(h)) for h in rows[:limit]]
    more = len(rows) > limit
    return HoldPage(items=items, next_cursor=encode_cursor({"id": items[-1].id}) if more else None)


@router.post(
    "/v1/admin/legal-holds",
    operation_id="place_legal_hold",
    summary="Place an agency-wide legal hold",
    openapi_extra={"x-server-side-rules": ["`agency_id` names a registered agency"]},
    response_model=HoldOut,
    status_code=status.HTTP_201_CREATED,
    responses=AGENCY_HOLD_ERRORS,
)
def place_legal_hold(
    request: Request,
    session: DbSession,
    state: State,
    principal: AdminPrincipal,
    body: HoldIn,
) -> HoldOut:
    """Hold every referral an agency made or is assigned to; their expiry stops until lifted."""
    hold = holds.place_on_agency(session, principal, agency_id=body.agency_id, reason=body.reason, now=state.clock())
    _log(state, session, principal, hold, "legal_hold_placed", None, request)
    return HoldOut.model_validate(holds.out(hold))


@router.post(
    "/v1/admin/legal-holds/{hold_id}/lift",
    operation_id="lift_legal_hold",
    summary="Lift an agency-wide legal hold",
    description="Ends an agency-wide hold; the held referrals' retention dates apply again.",
    response_model=HoldOut,
    responses={**AGENCY_HOLD_ERRORS, 409: {"description": "Already lifted"}},
)
def lift_legal_hold(
    request: Request,
    session: DbSession,
    state: State,
    principal: AdminPrincipal,
    hold_id: str,
    body: LiftIn,
) -> HoldOut:
    hold = holds.lift_on_agency(session, principal, hold_id, reason=body.reason, now=state.clock())
    _log(state, session, principal, hold, "legal_hold_lifted", None, request)
    return HoldOut.model_validate(holds.out(hold))


@router.get(
    "/v1/referrals/{referral_id}/legal-hold",
    operation_id="list_referral_legal_holds",
    summary="List a referral's legal holds",
    openapi_extra={"x-required-roles": ["coordinator"], "x-case-data": True, "x-purpose-required": True},
    response_model=HoldPage,
    responses={400: {"description": "X-Purpose missing or not open to you"}, **CASE_HOLD_ERRORS},
)
def list_referral_legal_holds(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    active: Active = True,
) -> Any:
    """The referral's holds with their reasons, for its network's coordinator; the read is logged."""
    policies, today = state.policies.current, state.clock().date()
    stated = access.require_purpose(policies, principal, purpose, today)
    referral = referrals.load(session, referral_id)
    found = holds.read_case_holds(
        session, state.envelope, policies, principal, referral, stated, today,
        active_only=active, after=_after(cursor), limit=limit,
    )
    ctx = disclose.ReadContext(principal, stated, justification, request.state.request_id)

    def part(item: dict[str, Any]) -> door.Released:
        document = HoldOut.model_validate(item).model_dump(mode="json")
        fields = [f for f, v in zip(holds.READ_FIELDS, (item["reason"], item["lift_reason"]), strict=True) if v]
        return door.record_part(
            ctx, found.grant, document, owner_agency=referral.referring_agency, subject_id=referral.subject_id,
            record_ids={"referral_id": referral.id, "hold_id": item["id"]}, fields=fields,
        )

    # An empty page is a read too: it tells the caller that nothing holds the referral.
    asked = [] if found.holds else [disclose.read_event(
        ctx, found.grant, owner_agency=referral.referring_agency, subject_id=referral.subject_id,
        record_ids={"referral_id": referral.id, "hold_ids": []}, fields=[],
    )]
    next_cursor = encode_cursor({"id": found.next_after}) if found.next_after else None
    return door.send(state, session, [part(i) for i in found.holds], door.page(next_cursor), extra_events=asked)


@router.post(
    "/v1/referrals/{referral_id}/legal-hold",
    operation_id="place_referral_legal_hold",
    summary="Place a legal hold on a referral",
    openapi_extra={"x-required-roles": ["coordinator"], "x-case-data": True},
    response_model=HoldOut,
    status_code=status.HTTP_201_CREATED,
    responses=CASE_HOLD_ERRORS,
)
def place_referral_legal_hold(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    body: CaseHoldIn,
) -> HoldOut:
    """Keep this referral past its retention date until the hold is lifted (the reply has no reason)."""
    referral = referrals.load(session, referral_id)
    hold = holds.place_on_referral(
        session, state.envelope, state.policies.current, principal, referral, reason=body.reason, now=state.clock()
    )
    _log(state, session, principal, hold, "legal_hold_placed", referral.subject_id, request)
    return HoldOut.model_validate(holds.out(hold))


@router.post(
    "/v1/referrals/{referral_id}/legal-hold/{hold_id}/lift",
    operation_id="lift_referral_legal_hold",
    summary="Lift a referral's legal hold",
    description="Ends a hold on one referral; for its network's coordinator.",
    openapi_extra={"x-required-roles": ["coordinator"], "x-case-data": True},
    response_model=HoldOut,
    responses={**CASE_HOLD_ERRORS, 409: {"description": "Already lifted"}},
)
def lift_referral_legal_hold(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    hold_id: str,
    body: LiftIn,
) -> HoldOut:
    referral = referrals.load(session, referral_id)
    hold = holds.lift_on_referral(
        session, state.envelope, state.policies.current, principal, referral, hold_id,
        reason=body.reason, now=state.clock(),
    )
    _log(state, session, principal, hold, "legal_hold_lifted", referral.subject_id, request)
    return HoldOut.model_validate(holds.out(hold))
