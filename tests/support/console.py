"""The console through HTTP, for the tests: the suite's people and a browser-like client (tests/console)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from app.console import people
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
CONDUCT = re.compile(r'name="(code:[^"]+)" value="([^"]+)"')
NEXT = re.compile(r'name="next" value="([^"]*)"')


class Clock:
    """The app's clock, held still and moved by the test (state.clock)."""

    def __init__(self, state: AppState) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        state.clock = self

    def __call__(self) -> datetime:
        return self.now

    def forward(self, **delta: float) -> None:
        self.now += timedelta(**delta)


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

    def sign_in(self, person_id: str, password: str = PASSWORD, *, accept_conduct: bool = True) -> Any:
        self.get("/console/sign-in")
        response = self.post("/console/sign-in", {"person": person_id, "password": password, "next": "/console/"})
        if "/sign-in/enrol" in str(response.url) or "/sign-in/second-factor" in str(response.url):
            step = "enrol" if "/enrol" in str(response.url) else "second-factor"
            response = self.post(f"/console/sign-in/{step}", {"code": self.code()})
        if accept_conduct and response.url.path == "/console/conduct":
            response = self.accept_conduct(response)
        return response

    def accept_conduct(self, page: Any) -> Any:
        """Accept every code of conduct the page shows (as its Accept button does); any other page is returned."""
        if page.url.path != "/console/conduct":
            return page
        codes = dict(CONDUCT.findall(page.text))
        target = NEXT.search(page.text, page.text.find('action="/console/conduct"'))
        return self.post("/console/conduct", {**codes, "next": target.group(1) if target else "/console/"})

    def choose_purpose(self, purpose: str) -> Any:
        self.get("/console/purpose")
        return self.post("/console/purpose", {"purpose": purpose, "next": "/console/"})


@functools.cache
def password_hash() -> str:
    return people.hash_password(PASSWORD)
