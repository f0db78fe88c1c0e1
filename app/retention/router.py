"""HTTP for legal holds: admins hold agencies or referrals, coordinators hold referrals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from app.agencies.schemas import Role
from app.auth.principal import AdminPrincipal, Principal, require_roles
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from app.referrals import service as referrals
from app.retention import holds
from app.retention.schemas import CaseHoldIn, HoldIn, HoldOut, HoldPage, LiftIn
from app.state import DbSession, State

router = APIRouter(tags=["legal-holds"])
HoldPrincipal = Annotated[Principal, Depends(require_roles(Role.coordinator, Role.admin))]
HOLD_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not a coordinator or admin (agency-wide holds: admin only)"},
    404: {"description": "No such referral or hold"},
    410: {"description": "The referral was purged or erased"},
}


def _page(
    session: DbSession, active: bool, cursor: str | None, limit: int, referral_id: str | None = None
) -> HoldPage:
    position = decode_cursor(cursor)
    after = str(position.get("id", "")) if position else None
    rows = holds.page(
        session, active_only=active, after=after, limit=limit + 1, referral_id=referral_id
    )
    items = [HoldOut.model_validate(holds.out(h)) for h in rows[:limit]]
    more = len(rows) > limit
    return HoldPage(items=items, next_cursor=encode_cursor({"id": items[-1].id}) if more else None)


def _log(
    state: State, session: DbSession, principal: Principal, hold: Any, action: str, request: Request
) -> None:
    subject_id = None
    if hold.referral_id is not None:
        from app.referrals.models import Referral

        referral = session.get(Referral, hold.referral_id)
        subject_id = referral.subject_id if referral is not None else None
    state.audit.append(
        session,
        holds.hold_event(principal, hold, action, subject_id, request.state.request_id),
        now=state.clock(),
    )


@router.get("/v1/admin/legal-holds", operation_id="list_legal_holds", response_model=HoldPage)
def list_legal_holds(
    session: DbSession,
    _: AdminPrincipal,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    active: Annotated[bool, Query(description="Only holds not lifted.")] = True,
) -> HoldPage:
    return _page(session, active, cursor, limit)


@router.post(
    "/v1/admin/legal-holds",
    operation_id="place_legal_hold",
    response_model=HoldOut,
    status_code=status.HTTP_201_CREATED,
    responses=HOLD_ERRORS,
)
def place_legal_hold(
    request: Request,
    session: DbSession,
    state: State,
    principal: AdminPrincipal,
    body: HoldIn,
) -> HoldOut:
    """Hold one referral, or every referral an agency made or is assigned to; expiry stops."""
    referral = referrals.load(session, body.referral_id) if body.referral_id else None
    hold = holds.place(
        session,
        principal,
        reason=body.reason,
        now=state.clock(),
        agency_id=body.agency_id,
        referral=referral,
    )
    _log(state, session, principal, hold, "legal_hold_placed", request)
    return HoldOut.model_validate(holds.out(hold))


@router.post(
    "/v1/admin/legal-holds/{hold_id}/lift",
    operation_id="lift_legal_hold",
    response_model=HoldOut,
    responses={**HOLD_ERRORS, 409: {"description": "Already lifted"}},
)
def lift_legal_hold(
    request: Request,
    session: DbSession,
    state: State,
    principal: AdminPrincipal,
    hold_id: str,
    body: LiftIn,
) -> HoldOut:
    hold = holds.lift(session, principal, holds.get(session, hold_id), body.reason, state.clock())
    _log(state, session, principal, hold, "legal_hold_lifted", request)
    return HoldOut.model_validate(holds.out(hold))


@router.get(
    "/v1/referrals/{referral_id}/legal-hold",
    operation_id="list_referral_legal_holds",
    response_model=HoldPage,
    responses=HOLD_ERRORS,
)
def list_referral_legal_holds(
    session: DbSession,
    _: HoldPrincipal,
    referral_id: str,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    active: Annotated[bool, Query(description="Only holds not lifted.")] = True,
) -> HoldPage:
    referrals.load(session, referral_id)
    return _page(session, active, cursor, limit, referral_id)


@router.post(
    "/v1/referrals/{referral_id}/legal-hold",
    operation_id="place_referral_legal_hold",
    response_model=HoldOut,
    status_code=status.HTTP_201_CREATED,
    responses=HOLD_ERRORS,
)
def place_referral_legal_hold(
    request: Request,
    session: DbSession,
    state: State,
    principal: HoldPrincipal,
    referral_id: str,
    body: CaseHoldIn,
) -> HoldOut:
    """Keep this referral past its retention date until the hold is lifted."""
    referral = referrals.load(session, referral_id)
    hold = holds.place(session, principal, reason=body.reason, now=state.clock(), referral=referral)
    _log(state, session, principal, hold, "legal_hold_placed", request)
    return HoldOut.model_validate(holds.out(hold))


@router.post(
    "/v1/referrals/{referral_id}/legal-hold/{hold_id}/lift",
    operation_id="lift_referral_legal_hold",
    response_model=HoldOut,
    responses={**HOLD_ERRORS, 409: {"description": "Already lifted"}},
)
def lift_referral_legal_hold(
    request: Request,
    session: DbSession,
    state: State,
    principal: HoldPrincipal,
    referral_id: str,
    hold_id: str,
    body: LiftIn,
) -> HoldOut:
    referrals.load(session, referral_id)
    hold = holds.lift(
        session, principal, holds.get(session, hold_id, referral_id), body.reason, state.clock()
    )
    _log(state, session, principal, hold, "legal_hold_lifted", request)
    return HoldOut.model_validate(holds.out(hold))
