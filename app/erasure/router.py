"""HTTP for erasure on request: POST /v1/subjects/{id}/erasure."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.auth.principal import CurrentPrincipal
from app.erasure import service
from app.erasure.schemas import ErasureIn, ErasureOut
from app.state import DbSession, State

router = APIRouter(tags=["erasure"])


@router.post(
    "/v1/subjects/{subject_id}/erasure",
    operation_id="erase_subject",
    summary="Erase a person",
    openapi_extra={"x-required-roles": ["coordinator"], "x-case-data": True},
    response_model=ErasureOut,
    responses={
        403: {"description": "Not the coordinator of every network holding a referral about the person"},
        404: {"description": "No such subject"},
        409: {"description": "A legal hold keeps the person's records"},
        410: {"description": "Already erased or purged"},
        500: {"description": "Erasure incomplete: the key is destroyed, rows remain sealed off"},
    },
)
def erase_subject(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    subject_id: str,
    body: ErasureIn,
) -> Any:
    """Erase the person now: key destroyed, records deleted, partners told, every read then 410."""
    # The erasure commits in steps of its own; end this request's transaction first.
    session.commit()
    erased = service.erase(state, principal, subject_id, body, request.state.request_id)
    return ErasureOut(
        subject_id=erased.subject_id,
        status="erased",
        erased_at=erased.erased_at,
        referral_ids=erased.referral_ids,
        notes=erased.notes,
        withdrawn_from=erased.withdrawn_from,
    )
