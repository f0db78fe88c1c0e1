"""The console through HTTP: people of the demo network, each signed in in a browser-like client of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.console import PEOPLE, Clock, ConsoleClient, password_hash

from app.console import people
from app.db import transaction
from app.state import AppState


@pytest.fixture
def clock(state: AppState) -> Clock:
    return Clock(state)


@pytest.fixture
def console_people(state: AppState, demo: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The suite's people (each also an API client of the same id); returns id -> agency."""
    with transaction(state.sessions) as session:
        for person_id, agency, name, roles in PEOPLE:
            person = people.create_person(session, person_id=person_id, agency_id=agency, name=name, roles=roles,
                                          password=None)
            person.password_hash = password_hash()  # one argon2id hash for the suite: ~0.1 s each otherwise
    return {p[0]: p[1] for p in PEOPLE}



@pytest.fixture
def browser(app_client: TestClient, state: AppState) -> Iterator[Callable[[], ConsoleClient]]:
    """A factory of fresh browsers (each its own cookie jar) on the running app."""
    made: list[ConsoleClient] = []

    def _new() -> ConsoleClient:
        client = ConsoleClient(app_client.app, state)
        made.append(client)
        return client

    yield _new
    for client in made:
        client.http.close()


@pytest.fixture
def signed_in(browser: Callable[[], ConsoleClient], console_people: dict[str, str]) -> Callable[..., ConsoleClient]:
    """``signed_in("rana-referrer", purpose="safeguarding_assessment")``: a browser past sign-in (and TOTP)."""

    def _sign_in(person_id: str, purpose: str | None = None) -> ConsoleClient:
        client = browser()
        response = client.sign_in(person_id)
        assert response.status_code == 200 and "/console/" in str(response.url), response.text[:2000]
        if purpose is not None:
            chosen = client.choose_purpose(purpose)
            assert chosen.status_code == 200, chosen.text[:2000]
        return client

    return _sign_in
