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


@router.get("/agencies", operation_id="list_agencies", response_model=AgencyPage)
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
    response_model=AgencyOut,
    status_code=status.HTTP_201_CREATED,
)
def create_agency(session: DbSession, _: AdminPrincipal, body: AgencyIn) -> AgencyOut:
    return AgencyOut.model_validate(service.add_agency(session, body))


@router.get("/clients", operation_id="list_clients", response_model=ClientPage)
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
    response_model=ClientCreated,
    status_code=status.HTTP_201_CREATED,
)
def create_client(session: DbSession, state: State, _: AdminPrincipal, body: ClientIn) -> ClientCreated:
    created = service.add_client(session, body, cost=state.settings.secret_hash_cost)
    out = ClientOut.model_validate(created.client)
    return ClientCreated(**out.model_dump(), client_secret=created.secret)


@router.post("/clients/{client_id}/disable", operation_id="disable_client", response_model=ClientOut)
def disable_client(session: DbSession, _: AdminPrincipal, client_id: str) -> ClientOut:
    return ClientOut.model_validate(service.disable_client(session, client_id))
