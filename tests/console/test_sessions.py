"""Console sessions: a new id at sign-in (no fixation), sign-out ends it on the server, idle and absolute
timeouts end it, and the cookie is HttpOnly, SameSite=Strict, Path=/console, Secure outside dev.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from support.console import PASSWORD, Clock, ConsoleClient

from app.config import Settings
from app.console import web
from app.console.models import ConsoleSession
from app.crypto.keyring import Keyring
from app.main import create_app
from app.state import AppState

Browser = Callable[[], ConsoleClient]
SignedIn = Callable[..., ConsoleClient]


def set_cookie(response: Any) -> SimpleCookie:
    """The response's Set-Cookie for the console's cookie, parsed (attributes and all)."""
    cookie: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookie.load(header)
    assert web.COOKIE in cookie, response.headers
    return cookie


def cookie_of(client: ConsoleClient) -> str:
    value = client.http.cookies.get(web.COOKIE, path="/console")
    assert value, "the browser holds no console cookie"
    return str(value)


def with_cookie(browser: Browser, token: str) -> ConsoleClient:
    """Another browser that presents the given cookie (a stolen or replayed one)."""
    client = browser()
    client.http.cookies.set(web.COOKIE, token, domain="testserver.local", path="/console")
    return client


def is_signed_in(client: ConsoleClient) -> bool:
    """Signed in: home, or the code of conduct a signed-in person accepts first."""
    home = client.get("/console/", follow_redirects=False)
    if home.headers.get("location", "").startswith("/console/conduct"):
        home = client.get(home.headers["location"], follow_redirects=False)
    return home.status_code == 200


def session_ids(state: AppState) -> set[str]:
    with state.read_sessions() as session:
        return set(session.scalars(select(ConsoleSession.id)))


def sign_in(client: ConsoleClient, person_id: str = "rana-referrer") -> Any:
    client.get("/console/sign-in")
    return client.post("/console/sign-in", {"person": person_id, "password": PASSWORD, "next": "/console/"},
                       follow_redirects=False)


def test_signing_in_starts_a_new_session_and_the_old_id_dies(
    browser: Browser, console_people: dict[str, str], state: AppState
) -> None:
    client = browser()
    form = client.get("/console/sign-in", follow_redirects=False)
    before = set_cookie(form)[web.COOKIE].value
    anonymous_csrf = client.csrf
    assert hashlib.sha256(before.encode()).hexdigest() in session_ids(state)
    signed = client.post("/console/sign-in", {"person": "rana-referrer", "password": PASSWORD, "next": "/console/"},
                         follow_redirects=False)
    assert signed.status_code == 303
    after = set_cookie(signed)[web.COOKIE].value
    assert after != before
    assert is_signed_in(client)
    ids = session_ids(state)
    assert hashlib.sha256(before.encode()).hexdigest() not in ids  # the pre-sign-in session is gone
    assert hashlib.sha256(after.encode()).hexdigest() in ids
    assert after not in ids and before not in ids  # the database holds digests, never the cookie's token
    # Whoever kept the pre-sign-in cookie (or planted it) holds nothing: not signed in, its token refused.
    planted = with_cookie(browser, before)
    assert not is_signed_in(planted)
    refused = planted.post("/console/purpose", {"purpose": "safeguarding_assessment"}, csrf=anonymous_csrf)
    assert refused.status_code == 403
    assert client.csrf != anonymous_csrf


def test_a_cookie_the_server_never_issued_is_not_adopted(
    browser: Browser, console_people: dict[str, str], state: AppState
) -> None:
    client = with_cookie(browser, "attacker-chosen-session-value")
    form = client.get("/console/sign-in", follow_redirects=False)
    issued = set_cookie(form)[web.COOKIE].value
    assert issued != "attacker-chosen-session-value"
    signed = client.post("/console/sign-in", {"person": "rana-referrer", "password": PASSWORD, "next": "/console/"},
                         follow_redirects=False)
    assert set_cookie(signed)[web.COOKIE].value not in ("attacker-chosen-session-value", issued)
    assert hashlib.sha256(b"attacker-chosen-session-value").hexdigest() not in session_ids(state)
    assert not is_signed_in(with_cookie(browser, "attacker-chosen-session-value"))


def test_signing_out_ends_the_session_on_the_server(
    signed_in: SignedIn, browser: Browser, state: AppState
) -> None:
    client = signed_in("rana-referrer")
    token = cookie_of(client)
    assert is_signed_in(with_cookie(browser, token))  # the cookie alone is the session (for the replay below)
    out = client.post("/console/sign-out", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    removal = set_cookie(out)[web.COOKIE]
    assert removal.value == "" and removal["path"] == "/console"
    assert hashlib.sha256(token.encode()).hexdigest() not in session_ids(state)
    assert not is_signed_in(client)
    replayed = with_cookie(browser, token)
    response = replayed.get("/console/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/console/sign-in")


def test_an_idle_session_ends(signed_in: SignedIn, state: AppState, clock: Clock) -> None:
    client = signed_in("rana-referrer")
    idle = state.settings.console_idle_minutes
    clock.forward(minutes=idle - 1)
    assert is_signed_in(client)  # a request: the idle time starts again
    clock.forward(minutes=idle - 1)
    assert is_signed_in(client)
    token = cookie_of(client)
    clock.forward(minutes=idle, seconds=1)
    response = client.get("/console/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/console/sign-in")
    assert hashlib.sha256(token.encode()).hexdigest() not in session_ids(state)
    clock.forward(seconds=1)
    assert not is_signed_in(client)


def test_a_session_ends_at_the_absolute_limit_however_busy(
    signed_in: SignedIn, state: AppState, clock: Clock
) -> None:
    client = signed_in("rana-referrer")
    limit = timedelta(hours=state.settings.console_absolute_hours)
    step = timedelta(minutes=state.settings.console_idle_minutes - 5)
    elapsed = timedelta(0)
    while elapsed + step <= limit:
        clock.forward(seconds=step.total_seconds())
        elapsed += step
        assert is_signed_in(client), elapsed
    clock.forward(seconds=(limit - elapsed).total_seconds() + 1)
    response = client.get("/console/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/console/sign-in")


def test_the_cookie_is_httponly_samesite_strict_and_scoped_to_the_console(
    browser: Browser, console_people: dict[str, str], state: AppState
) -> None:
    client = browser()
    for response in (client.get("/console/sign-in", follow_redirects=False), sign_in(client)):
        morsel = set_cookie(response)[web.COOKIE]
        assert morsel["httponly"] is True
        assert morsel["samesite"].lower() == "strict"
        assert morsel["path"] == "/console"
        assert not morsel["domain"]  # host-only
        assert int(morsel["max-age"]) == state.settings.console_absolute_hours * 3600
        assert not morsel["secure"]  # dev (http on localhost); prod below


def test_the_cookie_is_secure_in_prod(tmp_path: Path, database_url: str) -> None:
    keyring = tmp_path / "keyring.json"
    Keyring.generate().save(keyring)
    settings = Settings(env="prod", database_url=database_url, data_dir=tmp_path / "data",  # type: ignore[arg-type]
                        keyring_path=keyring)
    assert not settings.is_dev
    with TestClient(create_app(settings), base_url="https://testserver", raise_server_exceptions=False) as client:
        response = client.get("/console/sign-in", follow_redirects=False)
        assert response.status_code == 200
        morsel = set_cookie(response)[web.COOKIE]
        assert morsel["secure"] is True and morsel["httponly"] is True
        assert morsel["samesite"].lower() == "strict" and morsel["path"] == "/console"
        for name, value in web.SECURITY_HEADERS.items():
            assert response.headers[name] == value
