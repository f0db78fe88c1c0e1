"""Signing in to the console: passwords, lockout, rate limit, disabled people, the second factor, and what is logged.

Every attempt goes through HTTP (a browser-like client per person); the disclosure log and the application log
are read back to show what each attempt left, and what it did not (no password, no attempted account name).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi.routing import iter_route_contexts
from support.audit_log import entries
from support.console import PASSWORD, Clock, ConsoleClient
from support.settings import suite_settings

from app.config import Settings
from app.console import people, web
from app.console.models import ConsoleSession, Person
from app.db import transaction
from app.observability import JsonFormatter
from app.state import AppState

Browser = Callable[[], ConsoleClient]
SignedIn = Callable[..., ConsoleClient]
CSRF_VALUE = re.compile(r'name="csrf" value="[^"]+"')


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings for this module's app on top of the suite's (a test parametrizes this to change them)."""
    return {}


@pytest.fixture
def settings(tmp_path: Any, database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return suite_settings(tmp_path, database_url, **settings_overrides)


def attempt(client: ConsoleClient, person_id: str, password: str, **kwargs: Any) -> Any:
    """One sign-in attempt as a browser makes it: the form first (its CSRF token), then the post."""
    client.get("/console/sign-in")
    return client.accept_conduct(client.post("/console/sign-in", {"person": person_id, "password": password,
                                                                  "next": "/console/"}, **kwargs))


def without_token(html: str) -> str:
    return CSRF_VALUE.sub("", html)


def sign_ins(state: AppState) -> list[Any]:
    return entries(state, event_type="sign_in")


def is_signed_in(client: ConsoleClient) -> bool:
    response = client.get("/console/", follow_redirects=False)
    return response.status_code == 200 or response.headers.get("location", "").startswith("/console/conduct")


def person_row(state: AppState, person_id: str) -> Person:
    with state.read_sessions() as session:
        person = session.get(Person, person_id)
        assert person is not None
        session.expunge(person)
        return person


# Passwords ---------------------------------------------------------------------------------------


def test_the_right_password_signs_in_and_is_logged(browser: Browser, console_people: dict[str, str],
                                                   state: AppState) -> None:
    client = browser()
    response = attempt(client, "rana-referrer", PASSWORD)
    assert response.status_code == 200 and str(response.url).endswith("/console/")
    assert "Rana Referrer" in response.text
    found = [e for e in sign_ins(state) if e.decision == "permit"]
    assert len(found) == 1
    assert found[0].details is not None
    assert found[0].details["reason"] == "ok" and found[0].details["method"] == "password"
    assert found[0].details["client_id"] == "rana-referrer" and found[0].actor_agency == "school-north"
    assert PASSWORD not in str(found[0].details)


def test_a_wrong_password_and_an_unknown_account_get_the_same_page(
    browser: Browser, console_people: dict[str, str], state: AppState
) -> None:
    client = browser()
    wrong = attempt(client, "rana-referrer", "not the password at all")
    unknown = attempt(client, "nobody-by-this-name", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert without_token(wrong.text) == without_token(unknown.text)
    assert "nobody-by-this-name" not in unknown.text and "rana-referrer" not in wrong.text
    assert not is_signed_in(client)
    # A disabled person, and a person with no password (identity provider only), get that same page too.
    with transaction(state.sessions) as session:
        people.set_disabled(session, session.get(Person, "south-referrer"), True)
        people.create_person(session, person_id="oidc-only-person", agency_id="school-north", name="Olly Oidc",
                             roles=["referrer"], password=None, oidc_issuer="https://idp.example",
                             oidc_subject="sub-1")
    disabled = attempt(client, "south-referrer", PASSWORD)
    no_password = attempt(client, "oidc-only-person", PASSWORD)
    assert disabled.status_code == no_password.status_code == 401
    assert without_token(disabled.text) == without_token(no_password.text) == without_token(wrong.text)
    denied = [e for e in sign_ins(state) if e.decision == "deny"]
    assert [e.details["reason"] for e in denied if e.details] == ["wrong-password", "unknown", "disabled",
                                                                  "no-password"]
    # A refused password names no one (what was typed may be anything, a pasted password too), not even in
    # the disclosure log; the address and the reason are there.
    assert all("client_id" not in (e.details or {}) and e.actor_agency is None for e in denied)
    assert all("nobody-by-this-name" not in str(e.details) for e in sign_ins(state))
    assert all(e.details and e.details["method"] == "password" and e.details["address"] for e in denied)


def test_five_failures_lock_the_account_until_the_lock_expires(
    browser: Browser, console_people: dict[str, str], state: AppState, clock: Clock
) -> None:
    client = browser()
    failure = attempt(client, "hadi-caseworker", "wrong guess number 0")
    for n in range(1, people.LOCK_AFTER):
        assert attempt(client, "hadi-caseworker", f"wrong guess number {n}").status_code == 401
    locked_at = person_row(state, "hadi-caseworker").locked_until
    assert locked_at is not None and locked_at == clock.now + people.LOCK_FOR
    # Now even the right password is refused, with the page any failure gets (nothing says the account exists).
    refused = attempt(client, "hadi-caseworker", PASSWORD)
    assert refused.status_code == 401 and not is_signed_in(client)
    assert without_token(refused.text) == without_token(failure.text)
    clock.forward(seconds=people.LOCK_FOR.total_seconds() - 60)
    assert attempt(client, "hadi-caseworker", PASSWORD).status_code == 401
    clock.forward(seconds=61)
    signed = attempt(client, "hadi-caseworker", PASSWORD)
    assert signed.status_code == 200 and is_signed_in(client)
    reasons = [e.details["reason"] for e in sign_ins(state) if e.details]
    assert reasons == ["wrong-password"] * people.LOCK_AFTER + ["locked", "locked", "ok"]
    assert person_row(state, "hadi-caseworker").locked_until is None


def test_an_unknown_account_never_locks_differently(browser: Browser, console_people: dict[str, str]) -> None:
    """Six failures on an unknown account and on a known (now locked) one: the same pages."""
    client = browser()
    known = [attempt(client, "police-caseworker", f"guess {n}") for n in range(people.LOCK_AFTER + 1)]
    unknown = [attempt(client, "not-a-person-here", f"guess {n}") for n in range(people.LOCK_AFTER + 1)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * (people.LOCK_AFTER + 1)
    assert {without_token(r.text) for r in known} == {without_token(r.text) for r in unknown}


@pytest.mark.parametrize("settings_overrides", [{"console_sign_in_burst": 2, "console_sign_in_per_minute": 0.01}])
def test_the_sign_in_rate_limit_answers_429_after_the_burst(
    browser: Browser, console_people: dict[str, str], state: AppState
) -> None:
    client = browser()
    assert [attempt(client, "rana-referrer", f"guess {n}").status_code for n in range(2)] == [401, 401]
    limited = attempt(client, "rana-referrer", PASSWORD)  # the right one: refused before it is looked at
    assert limited.status_code == 429 and not is_signed_in(client)
    assert 'id="sign-in-error"' in limited.text
    # Per address too (three times the burst): other names from the same address run out next.
    statuses = [attempt(client, f"someone-else-{n}", "whatever it is").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    reasons = [e.details["reason"] for e in sign_ins(state) if e.details]
    assert reasons.count("rate-limited") == 2 and "ok" not in reasons


def test_a_success_gives_the_attempts_back(browser: Browser, console_people: dict[str, str]) -> None:
    """Signing in often is not guessing: successes do not use up the allowance (default burst 10)."""
    for _ in range(12):
        client = browser()
        assert attempt(client, "nour-reader", PASSWORD).status_code == 200


def test_a_disabled_person_cannot_sign_in_and_their_open_session_ends_at_once(
    signed_in: SignedIn, browser: Browser, state: AppState
) -> None:
    open_session = signed_in("rana-referrer")
    assert is_signed_in(open_session)
    with transaction(state.sessions) as session:
        people.set_disabled(session, session.get(Person, "rana-referrer"), True)
    after = open_session.get("/console/", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/console/sign-in")
    assert attempt(browser(), "rana-referrer", PASSWORD).status_code == 401
    with state.read_sessions() as session:
        assert session.query(ConsoleSession).filter(ConsoleSession.person_id == "rana-referrer").count() == 0
    # A session the database still held (disabled by hand, sessions not ended) is refused as well.
    again = signed_in("south-referrer")
    with transaction(state.sessions) as session:
        person = session.get(Person, "south-referrer")
        assert person is not None
        person.disabled = True
    assert not is_signed_in(again)


# The application log -----------------------------------------------------------------------------


@pytest.fixture
def service_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The service's own log records (its loggers do not propagate: the handler goes on them)."""
    casebridge = logging.getLogger("casebridge")
    casebridge.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="casebridge"):
            yield caplog
    finally:
        casebridge.removeHandler(caplog.handler)


def test_the_application_log_never_holds_the_password_or_the_attempted_account(
    browser: Browser, console_people: dict[str, str], service_log: pytest.LogCaptureFixture
) -> None:
    wrong_password = "Zq-wrong-password-marker-77"  # noqa: S105 - a fake, to prove it is never logged
    pasted = "pasted-secret-in-the-account-field"
    client = browser()
    service_log.clear()
    attempt(client, "rana-referrer", wrong_password)
    attempt(client, pasted, wrong_password)
    attempt(client, "rana-referrer", PASSWORD)
    lines = [JsonFormatter().format(r) for r in service_log.records if r.name.startswith("casebridge")]
    console = [r for r in service_log.records if r.name == "casebridge.console"]
    assert len(console) == 3, lines
    for needle in (wrong_password, PASSWORD, pasted):
        assert not [line for line in lines if needle in line], needle
    # The console's own lines name nobody, not even the known account: a fingerprint stands in.
    assert not [r for r in console if "rana-referrer" in JsonFormatter().format(r)]
    assert {getattr(r, "person", None) for r in console} == {people.fingerprint("rana-referrer"),
                                                             people.fingerprint(pasted)}


# The second factor -------------------------------------------------------------------------------


def enrol_page(client: ConsoleClient, person_id: str) -> Any:
    response = attempt(client, person_id, PASSWORD)
    assert response.status_code == 200 and str(response.url).endswith("/console/sign-in/enrol"), response.text
    return response


def wrong_code(client: ConsoleClient) -> str:
    right = client.code()
    return "000000" if right != "000000" else "111111"


@pytest.mark.parametrize("person_id", ["karim-coordinator", "maya-auditor", "olga-admin"])
def test_a_coordinator_auditor_or_admin_enrols_a_second_factor_first(
    browser: Browser, console_people: dict[str, str], state: AppState, clock: Clock, person_id: str
) -> None:
    client = browser()
    page = enrol_page(client, person_id)
    assert client.totp_secret is not None and len(client.totp_secret) >= 16
    assert "<svg" in page.text  # the key as a QR code
    assert not is_signed_in(client)
    assert person_row(state, person_id).totp_sealed is None
    refused = client.post("/console/sign-in/enrol", {"code": wrong_code(client)})
    assert refused.status_code == 401 and 'id="code-error"' in refused.text
    assert person_row(state, person_id).totp_sealed is None and not is_signed_in(client)
    done = client.accept_conduct(client.post("/console/sign-in/enrol", {"code": client.code()}))
    assert done.status_code == 200 and str(done.url).endswith("/console/") and is_signed_in(client)
    sealed = person_row(state, person_id).totp_sealed
    assert sealed is not None and client.totp_secret not in sealed
    logged = [(e.decision, e.details["method"], e.details["reason"]) for e in sign_ins(state) if e.details]
    assert logged == [("deny", "totp", "wrong-code"), ("permit", "password+totp", "ok")]
    # The password alone was not a sign-in: it left no "permit" of its own.


def test_after_enrolment_sign_in_asks_for_a_code_and_a_code_works_once(
    browser: Browser, console_people: dict[str, str], state: AppState, clock: Clock
) -> None:
    first = browser()
    enrol_page(first, "karim-coordinator")
    used = first.code()
    assert first.post("/console/sign-in/enrol", {"code": used}).status_code == 200 and is_signed_in(first)

    second = browser()
    second.totp_secret = first.totp_secret
    asked = attempt(second, "karim-coordinator", PASSWORD)
    assert asked.status_code == 200 and str(asked.url).endswith("/console/sign-in/second-factor")
    assert 'id="totp-secret"' not in asked.text  # the key is shown at enrolment only
    assert not is_signed_in(second)
    wrong = second.post("/console/sign-in/second-factor", {"code": wrong_code(second)})
    assert wrong.status_code == 401 and not is_signed_in(second)
    replay = second.post("/console/sign-in/second-factor", {"code": used})  # the same code again
    assert replay.status_code == 401 and not is_signed_in(second)
    clock.forward(seconds=30)
    fresh = second.post("/console/sign-in/second-factor", {"code": second.code()})
    assert fresh.status_code == 200 and is_signed_in(second)
    # A code of a step already passed is refused too (the one before the one used).
    third = browser()
    attempt(third, "karim-coordinator", PASSWORD)
    assert first.totp_secret is not None
    earlier = pyotp.TOTP(first.totp_secret).at(clock.now - timedelta(seconds=30))
    assert third.post("/console/sign-in/second-factor", {"code": earlier}).status_code == 401
    logged = [(e.decision, e.details["method"], e.details["reason"]) for e in sign_ins(state) if e.details]
    assert logged == [("permit", "password+totp", "ok"), ("deny", "totp", "wrong-code"),
                      ("deny", "totp", "wrong-code"), ("permit", "password+totp", "ok"),
                      ("deny", "totp", "wrong-code")]


def console_get_paths(app: Any, referral_id: str) -> list[str]:
    """Every GET page under /console, path parameters filled (a referral's id, or a made-up id)."""
    found = []
    for route in iter_route_contexts(app.routes):
        path = getattr(route, "path", "")
        if path.startswith("/console/") and "GET" in (getattr(route, "methods", None) or ()):
            found.append(re.sub(r"\{[^}]+\}", lambda m: referral_id if m.group(0) == "{referral_id}"
                                else "no-such-thing", path))
    return found


@pytest.mark.parametrize("stage", ["enrol", "second_factor"])
def test_a_half_signed_in_session_opens_no_page(
    browser: Browser, console_people: dict[str, str], state: AppState, clock: Clock,
    post_referral: Callable[..., dict[str, Any]], stage: str
) -> None:
    referral = post_referral()
    client = browser()
    if stage == "second_factor":  # enrolled earlier, in another browser
        other = browser()
        enrol_page(other, "karim-coordinator")
        assert other.post("/console/sign-in/enrol", {"code": other.code()}).status_code == 200
    attempt(client, "karim-coordinator", PASSWORD)
    with state.read_sessions() as session:
        stages = [s.stage for s in session.query(ConsoleSession).filter(
            ConsoleSession.person_id == "karim-coordinator")]
    assert stage in stages
    home = client.get("/console/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"].startswith("/console/sign-in?next=")
    case = client.get(f"/console/referrals/{referral['id']}", follow_redirects=False)
    assert case.status_code == 303 and case.headers["location"].startswith("/console/sign-in?next=")
    paths = console_get_paths(client.http.app, referral["id"])
    assert len(paths) >= 4
    for path in paths:
        response = client.get(path, follow_redirects=False)
        assert response.status_code < 500, path
        if path.startswith("/console/sign-in"):  # signing in (password, code, identity provider): no case data
            assert "Karim Coordinator" not in response.text and referral["id"] not in response.text, path
            continue
        assert response.status_code in (303, 401, 403, 404), (path, response.status_code)
        if response.status_code == 303:
            assert response.headers["location"].startswith("/console/sign-in"), path
        assert "Karim Coordinator" not in response.text, path
        assert referral["id"] not in response.text or response.status_code == 303, path
    # The purpose cannot be set either (a form post needs a signed-in person).
    chosen = client.post("/console/purpose", {"purpose": "safeguarding_assessment"}, follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"].startswith("/console/sign-in")


def test_the_api_refuses_a_half_signed_in_visit(console_people: dict[str, str], state: AppState,
                                               app_client: Any) -> None:
    """Belt and braces: even a page that forgot its roles cannot reach the API before the second factor."""
    from starlette.requests import Request

    request = Request({"type": "http", "method": "GET", "path": "/console/", "headers": [], "query_string": b"",
                       "app": app_client.app})
    seen = web.Seen("karim-coordinator", "Karim Coordinator", "city-municipality", "City", "local_government",
                    frozenset({"coordinator"}), None)
    for stage in ("enrol", "second_factor", "anonymous"):
        visit = web.Visit(request, state, "some-session", "token", stage, seen, "safeguarding_assessment", "en")
        with pytest.raises(web.NotSignedIn):
            visit.api._headers("safeguarding_assessment", None)
    signed = web.Visit(request, state, "some-session", "token", "signed_in", seen, "safeguarding_assessment", "en")
    with pytest.raises(web.ConductOwed):  # nor before the page's gate found no code of conduct owed
        signed.api._headers("safeguarding_assessment", None)
    signed.conduct_cleared = True
    assert signed.api._headers("safeguarding_assessment", None)["Authorization"].startswith("Bearer ")
