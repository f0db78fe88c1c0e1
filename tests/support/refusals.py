"""Refusals in tests: clients made for one test, and the one denial entry a refusal must leave."""

from __future__ import annotations

import json
from collections.abc import Sequence

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from app.audit import queries
from app.audit.models import AuditEntry
from app.audit.queries import EntryFilter, EntryView
from app.state import AppState

# Finding 2: a coordinator-role client of an agency that is not the network's coordinator.
SOUTH_COORDINATOR = "south-coordinator"


def client_headers(
    state: AppState, app_client: TestClient, client_id: str, agency_id: str, roles: Sequence[str]
) -> dict[str, str]:
    """A client added for the test (app.agencies.service.add_client), and its bearer header."""
    from app.agencies import service
    from app.agencies.schemas import ClientIn, Role
    from app.db import transaction

    with transaction(state.sessions) as session:
        created = service.add_client(
            session, ClientIn(id=client_id, agency_id=agency_id, name=client_id, roles=[Role(r) for r in roles]),
            hasher=state.secret_hasher,
        )
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": created.secret}
    token = app_client.post("/v1/token", data=form)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def denial_entries(state: AppState) -> list[EntryView]:
    """Every `denial` entry, its details opened with the service's audit sealer."""
    with state.engine.connect() as conn:
        count = len(conn.execute(select(AuditEntry.seq).where(AuditEntry.event_type == "denial")).all())
        found = queries.search(conn, state.audit.sealer, EntryFilter(event_type="denial"), after=None,
                               limit=100_000)
    assert len(found) == count
    return found


def one_denial(state: AppState, response: Response, *never: str) -> EntryView:
    """The refused request left exactly one denial, and none of the values `never` is in it."""
    request_id = response.headers["X-Request-ID"]
    mine = [e for e in denial_entries(state) if (e.details or {}).get("request_id") == request_id]
    assert len(mine) == 1, (response.status_code, response.text, mine)
    entry = mine[0]
    text = json.dumps(entry.details) + json.dumps(
        [entry.actor_agency, entry.recipient_agency, entry.purpose, entry.rule_id]
    )
    for value in never:
        assert value not in text, value
    return entry
