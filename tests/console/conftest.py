"""The console through HTTP: people of the demo network, each signed in in a browser-like client of their own."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from app.console import people
from app.db import transaction
from app.state import AppState

PASSWORD = "a long pass phrase for tests"  # noqa: S105 - the suite's people only
# (id, agency, name, roles): one person for each role's job in the demo city network, and one in the town.
PEOPLE: list[tuple[str, str, str, list[str]]] = [
    ("rana-referrer", "school-north", "Rana Referrer", ["referrer", "caseworker"]),
    ("south-referrer", "school-south", "Sara South", ["referrer", "caseworker"]),
    ("karim-coordinator", "city-municipality", "Karim Coordinator", ["coordinator"]),
    ("hadi-caseworker", "city-social-services", "Hadi Caseworker", ["referrer", "caseworker"]),
    ("health-caseworker", "city-health-centre", "Huda Health", ["referrer", "caseworker"]),
    ("police-caseworker", "city-community-police", "Peter Police", ["referrer", "caseworker"]),
    ("youth-caseworker", "youth-ngo-bridges", "Yara Youth", ["caseworker"]),
    ("nour-reader", "youth-ngo-bridges", "Nour Reader", ["partner_reader"]),
    ("council-reader", "religious-council", "Rami Council", ["partner_reader"]),
    ("maya-auditor", "independent-auditor", "Maya Auditor", ["auditor"]),
    ("olga-admin", "city-municipality", "Olga Admin", ["admin"]),
    ("town-coordinator-person", "town-council", "Tarek Town", ["coordinator"]),
]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


class ConsoleClient:
    """One browser: its own cookies; forms posted with the CSRF token of the last page seen."""

    def __init__(self, app: Any, state: AppState) -> None:
        self.http = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
        self.state = state
        self.csrf = ""
        self.totp_secret: str | None = None

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.http.get(path, **kwargs)
        self._remember(response.text)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None, **kwargs: Any) -> Any:
        form = {"csrf": self.csrf if csrf is None else csrf, **(data or {})}
        response = self.http.post(path, data=form, **kwargs)
        self._remember(response.text)
        return response

    def _remember(self, html: str) -> None:
        found = CSRF.search(html)
        if found:
            self.csrf = found.group(1)
        secret = SECRET.search(html)
        if secret:
            self.totp_secret = secret.group(1)

    def code(self) -> str:
        """The authenticator's current code (a step ahead of the last one used, so never a replay)."""
        assert self.totp_secret is not None
        totp = pyotp.TOTP(self.totp_secret)
        return totp.at(self.state.clock().timestamp())

    def sign_in(self, person_id: str, password: str = PASSWORD) -> Any:
        self.get("/console/sign-in")
        response = self.post("/console/sign-in", {"person": person_id, "password": password, "next": "/console/"})
        if "/sign-in/enrol" in str(response.url) or "/sign-in/second-factor" in str(response.url):
            step = "enrol" if "/enrol" in str(response.url) else "second-factor"
            response = self.post(f"/console/sign-in/{step}", {"code": self.code()})
        return response

    def choose_purpose(self, purpose: str) -> Any:
        self.get("/console/purpose")
        return self.post("/console/purpose", {"purpose": purpose, "next": "/console/"})


@pytest.fixture
def console_people(state: AppState, demo: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The suite's people (each also an API client of the same id); returns id -> agency."""
    with transaction(state.sessions) as session:
        for person_id, agency, name, roles in PEOPLE:
            people.create_person(session, person_id=person_id, agency_id=agency, name=name, roles=roles,
                                 password=PASSWORD)
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
