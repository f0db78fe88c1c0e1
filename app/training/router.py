"""HTTP for training records: coordinators record completions, everyone reads their own status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from app.auth.principal import CurrentPrincipal
from app.state import DbSession, State
from app.training import service
from app.training.held import acting_person
from app.training.schemas import (
    CourseStatusOut,
    PersonId,
    TrainingRecordIn,
    TrainingRecordList,
    TrainingRecordOut,
    TrainingStatus,
)

router = APIRouter(tags=["training"])


@router.post(
    "/v1/training-records",
    operation_id="record_training",
    summary="Record a course completion",
    description=(
        "A coordinator of a network records that a person of one of its member agencies completed a course. "
        "A later completion of the same course supersedes earlier ones. Logged."
    ),
    openapi_extra={"x-required-roles": ["coordinator"]},
    response_model=TrainingRecordOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "Not a coordinator of a network of the person's agency, under an agreement in force"},
        400: {"description": "Dates that cannot be a completion, an unknown person without agency_id, or a "
                            "mismatched agency"},
    },
)
def record_training(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, body: TrainingRecordIn
) -> TrainingRecordOut:
    now = state.clock()
    row, agency = service.record(
        session, state.policies.current, principal, person_id=body.person_id, agency_id=body.agency_id,
        course_id=body.course_id, completed_on=body.completed_on, expires_on=body.expires_on, source="api", now=now,
    )
    state.audit.append(session, service.recorded_event(principal, row, agency, request.state.request_id), now=now)
    return TrainingRecordOut.model_validate(row)


@router.get(
    "/v1/training-records",
    operation_id="list_training_records",
    summary="List a person's training records",
    description="For the person themself and the coordinators of their agency's networks.",
    response_model=TrainingRecordList,
    responses={
        403: {"description": "Neither the person nor a coordinator of a network of their agency (agreement in force)"},
        404: {"description": "No such person"},
    },
)
def list_training_records(
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    person_id: Annotated[PersonId, Query(description="Whose records.")],
) -> TrainingRecordList:
    rows = service.records_of(session, state.policies.current, principal, person_id, state.clock().date())
    return TrainingRecordList(items=[TrainingRecordOut.model_validate(row) for row in rows])


@router.get(
    "/v1/training/status",
    operation_id="training_status",
    summary="Your training status",
    description=(
        "Each course the agreements of your agency's networks require of their recipients: ok, expiring "
        "(within 30 days), expired or missing. The person is the one the client acts for, else the client."
    ),
    response_model=TrainingStatus,
)
def training_status(session: DbSession, state: State, principal: CurrentPrincipal) -> TrainingStatus:
    person = acting_person(principal.client_id, principal.act)
    found = service.status(session, state.policies.current, person, principal.agency_id, state.clock().date())
    courses = [CourseStatusOut(course_id=c.course_id, state=c.state, completed_on=c.completed_on,
                               expires_on=c.expires_on) for c in found]
    return TrainingStatus(person_id=person, courses=courses)
