"""Admin API for agencies and clients: operators only, and no case data here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.agencies import repository, service
from app.agencies.schemas import (
    AgencyIn,
    AgencyOut,
    AgencyPage,
    ClientCreated,
    ClientIn,
    ClientOut,
    ClientPage,
)
from app.auth.principal import AdminPrincipal
from app.pagination import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from app.state import DbSession, State

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def _after(cursor: str | None) -> str | None:
    position = decode_cursor(cursor)
    return None if position is None else str(position.get("id", ""))


@router.get("/agencies", operation_id="list_agencies",
    summary="List agencies",
    description="Every agency known to this deployment, a page at a time.", response_model=AgencyPage)
def list_agencies(
    session: DbSession, _: AdminPrincipal, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> AgencyPage:
    rows = repository.list_agencies(session, _after(cursor), limit + 1)
    items = [AgencyOut.model_validate(a) for a in rows[:limit]]
    more = len(rows) > limit
    return AgencyPage(items=items, next_cursor=encode_cursor({"id": items[-1].id}) if more else None)


@router.post(
    "/agencies",
    operation_id="create_agency",
    summary="Register an agency",
    responses={409: {"description": "An agency with this id exists"}},
    description="Adds an agency with its sector; agreements name agencies by this id.",
    response_model=AgencyOut,
    status_code=status.HTTP_201_CREATED,
)
def create_agency(session: DbSession, _: AdminPrincipal, body: AgencyIn) -> AgencyOut:
    return AgencyOut.model_validate(service.add_agency(session, body))


@router.get("/clients", operation_id="list_clients",
    summary="List API clients",
    description="API clients with their agency, roles and whether they are enabled; never their secrets.",
    response_model=ClientPage,
)
def list_clients(
    session: DbSession,
    _: AdminPrincipal,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    agency_id: Annotated[str | None, Query(max_length=64)] = None,
) -> ClientPage:
    rows = repository.list_clients(session, _after(cursor), limit + 1, agency_id)
    items = [ClientOut.model_validate(c) for c in rows[:limit]]
    more = len(rows) > limit
    return ClientPage(items=items, next_cursor=encode_cursor({"id": items[-1].id}) if more else None)


@router.post(
    "/clients",
    operation_id="create_client",
    summary="Register an API client",
    openapi_extra={"x-server-side-rules": ["`agency_id` names a registered agency"]},
    responses={409: {"description": "A client with this id exists"}},
    description=(
        "Creates a client of an existing agency with the given roles; the reply holds its secret, shown "
        "this once."
    ),
    response_model=ClientCreated,
    status_code=status.HTTP_201_CREATED,
)
def create_client(session: DbSession, state: State, _: AdminPrincipal, body: ClientIn) -> ClientCreated:
    created = service.add_client(session, body, hasher=state.secret_hasher)
    out = ClientOut.model_validate(created.client)
    return ClientCreated(**out.model_dump(), client_secret=created.secret)


@router.post("/clients/{client_id}/disable", operation_id="disable_client",
    summary="Disable an API client",
    description="The client's tokens stop working on its next request.", response_model=ClientOut)
def disable_client(session: DbSession, _: AdminPrincipal, client_id: str) -> ClientOut:
    return ClientOut.model_validate(service.disable_client(session, client_id))
