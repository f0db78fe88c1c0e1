"""CSRF on every console form, and the security headers and CSP-safe HTML of every console page.

The routes are walked from the application (app.routes), so a page added later is covered without anyone
remembering to add it here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from support.audit_log import entries
from support.console import PASSWORD, ConsoleClient
from support.row_counts import counts

from app.console import web
from app.state import AppState

Browser = Callable[[], ConsoleClient]
SignedIn = Callable[..., ConsoleClient]
PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
# Who walks the pages (each role once), with a purpose their agency's agreements offer.
WALKERS = [("rana-referrer", "safeguarding_assessment"), ("karim-coordinator", "intervention_planning"),
           ("youth-caseworker", "service_provision"), ("nour-reader", "service_provision"),
           ("maya-auditor", "subject_access"), ("olga-admin", "safeguarding_assessment")]


def console_routes(app: Any, method: str) -> list[tuple[str, Any]]:
    """(path, route) of every console route answering ``method``."""
    found = []
    for route in iter_route_contexts(app.routes):
        path = getattr(route, "path", "")
        if path.startswith(web.PREFIX + "/") and method in (getattr(route, "methods", None) or ()):
            found.append((path, route))
    return found


def fill(path: str, route: Any, known: dict[str, str]) -> str:
    """The path with its parameters filled: a known id where the test has one, else a made-up one."""
    types = {}
    for param in getattr(getattr(route, "dependant", None), "path_params", []):
        types[param.name] = param.field_info.annotation

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if types.get(name) is int:
            return "1"
        return known.get(name, "no-such-id")

    return PARAMETER.sub(value, path)


# CSRF --------------------------------------------------------------------------------------------

REFUSALS = ["missing", "wrong", "other-session", "foreign-origin", "null-origin"]


@pytest.mark.parametrize("kind", REFUSALS)
def test_every_console_form_refuses_a_post_without_this_sessions_token(
    signed_in: SignedIn, state: AppState, post_referral: Callable[..., dict[str, Any]], kind: str
) -> None:
    referral = post_referral()
    client = signed_in("karim-coordinator", purpose="intervention_planning")
    other = signed_in("rana-referrer", purpose="safeguarding_assessment")
    client.get("/console/")
    own_token = client.csrf
    assert own_token and other.csrf and other.csrf != own_token
    posts = console_routes(client.http.app, "POST")
    assert {"/console/sign-in", "/console/sign-out", "/console/purpose", "/console/language"} <= {p for p, _ in posts}
    for template, route in posts:
        path = fill(template, route, {"referral_id": referral["id"]})
        headers: dict[str, str] = {}
        form: dict[str, Any] = {"purpose": "safeguarding_assessment", "language": "ar", "next": "/console/"}
        if kind == "missing":
            sent = None
        elif kind == "wrong":
            sent = own_token[:-4] + ("AAAA" if not own_token.endswith("AAAA") else "BBBB")
        elif kind == "other-session":
            sent = other.csrf
        else:
            sent = own_token
            headers["Origin"] = "https://attacker.example" if kind == "foreign-origin" else "null"
        before = counts(state)
        denials = len(entries(state, event_type="denial"))
        if sent is None:
            response = client.http.post(path, data=form, headers=headers, follow_redirects=False)
        else:
            response = client.http.post(path, data={"csrf": sent, **form}, headers=headers, follow_redirects=False)
        assert response.status_code == 403, (path, kind, response.status_code, response.text[:500])
        assert 'lang="en"' in response.text  # nothing changed: not even the language
        after = counts(state)
        assert after["audit_entries"] == before["audit_entries"] + 1, path
        assert {k: v for k, v in after.items() if k != "audit_entries"} == \
            {k: v for k, v in before.items() if k != "audit_entries"}, path
        logged = entries(state, event_type="denial")
        assert len(logged) == denials + 1
        assert logged[-1].details is not None
        assert logged[-1].details["reason"] == "console-csrf" and logged[-1].details["path"] == path
        assert logged[-1].decision == "deny"
    # Still signed in (sign-out was refused too), purpose unchanged, and the right token still works.
    home = client.get("/console/")
    assert home.status_code == 200 and "intervention_planning" in home.text and 'lang="en"' in home.text
    ok = client.http.post("/console/language", data={"csrf": own_token, "language": "ar", "next": "/console/"},
                          headers={"Origin": "https://testserver"}, follow_redirects=False)
    assert ok.status_code == 303


def test_a_post_with_no_session_at_all_is_refused(browser: Browser, console_people: dict[str, str],
                                                  state: AppState) -> None:
    client = browser()
    before = counts(state)
    response = client.http.post("/console/sign-in", data={"csrf": "x", "person": "rana-referrer",
                                                          "password": "whatever it is"})
    assert response.status_code == 403
    assert counts(state)["console_sessions"] == before["console_sessions"]
    assert not [e for e in entries(state, event_type="sign_in")]  # the password was never looked at


# Headers and HTML --------------------------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.I)
SCRIPT_WITH_BODY = re.compile(r"<script\b[^>]*>\s*[^<\s]", re.I)
TAG = re.compile(r"<[a-zA-Z][^>]*>", re.S)
STYLE_ATTRIBUTE = re.compile(r"\sstyle\s*=", re.I)
HANDLER_ATTRIBUTE = re.compile(r"\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"(?:href|src|action)\s*=\s*[\"']?\s*javascript:", re.I)


def header_problems(response: Any) -> list[str]:
    csp = response.headers.get("content-security-policy", "")
    found = []
    if csp != web.CSP or "unsafe-inline" in csp or "unsafe-eval" in csp:
        found.append(f"Content-Security-Policy: {csp!r}")
    wanted_headers = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "cache-control": "no-store",
                      "referrer-policy": web.SECURITY_HEADERS["Referrer-Policy"]}
    assert wanted_headers["referrer-policy"] in ("no-referrer", "same-origin", "strict-origin")
    for name, wanted in wanted_headers.items():
        if response.headers.get(name) != wanted:
            found.append(f"{name}: {response.headers.get(name)!r}")
    return found


def html_problems(html: str) -> list[str]:
    found = []
    if INLINE_SCRIPT.search(html) or SCRIPT_WITH_BODY.search(html):
        found.append("inline <script>")
    if re.search(r"<style\b", html, re.I):
        found.append("<style> element")
    for tag in TAG.findall(html):
        if STYLE_ATTRIBUTE.search(tag):
            found.append(f"style= in {tag[:120]}")
        if HANDLER_ATTRIBUTE.search(tag):
            found.append(f"on*= handler in {tag[:120]}")
    if JS_URL.search(html):
        found.append("javascript: URL")
    return found


def page_problems(response: Any, where: str) -> list[str]:
    """What is wrong with a console response: a 5xx, a missing header, inline code in its HTML."""
    found = []
    if response.status_code >= 500:
        found.append(f"status {response.status_code}")
    found += header_problems(response)
    if response.headers.get("content-type", "").startswith("text/html"):
        found += html_problems(response.text)
    return [f"{where}: {problem}" for problem in found]


def test_the_checks_find_what_they_look_for() -> None:
    """The regexes themselves: each forbidden form is caught, the allowed ones are not."""
    for bad in ('<script>alert(1)</script>', '<script type="module">x()</script>', '<p style="color:red">',
                '<a href="#" onclick="x()">', '<body onload = "x()">', '<style>p{}</style>',
                '<a href="javascript:x()">', '<img src=x onerror=alert(1)>'):
        assert html_problems(bad), bad
    for good in ('<script src="/console/static/console.js" defer></script>', '<p class="styled">one=two</p>',
                 '<input autocomplete="one-time-code">', '<a href="/console/x?on=1">'):
        assert not html_problems(good), good


def test_every_console_page_sends_the_headers_and_no_inline_code(
    signed_in: SignedIn, browser: Browser, app_client: Any, post_referral: Callable[..., dict[str, Any]],
    move: Callable[..., dict[str, Any]],
) -> None:
    referral = post_referral()
    move(referral["id"], "triaged", "accepted", ("assigned", {"agencies": ["youth-ngo-bridges"]}))
    known = {"referral_id": referral["id"], "agreement_id": "demo-city"}
    gets = console_routes(app_client.app, "GET")
    assert len(gets) >= 5
    rendered = 0
    problems: list[str] = []
    visitors: list[tuple[str, ConsoleClient]] = [("anonymous", browser())]
    visitors += [(person, signed_in(person, purpose=purpose)) for person, purpose in WALKERS]
    for who, client in visitors:
        for template, route in gets:
            path = fill(template, route, known)
            response = client.get(path, follow_redirects=False)
            problems += page_problems(response, f"{who} GET {path}")
            rendered += response.status_code == 200
    assert rendered >= len(gets)  # most pages rendered in full for someone
    # The pages a browser meets on the way too: failures, refusals, the enrolment (with its QR code).
    client = browser()
    client.get("/console/sign-in")
    failed = client.post("/console/sign-in", {"person": "x-nobody", "password": "no such password"})
    problems += page_problems(failed, "failed sign-in")
    forged = client.post("/console/sign-in", {"person": "olga-admin", "password": "wrong"}, csrf="forged")
    problems += page_problems(forged, "csrf refusal")
    enrol = client.post("/console/sign-in", {"person": "town-coordinator-person", "password": PASSWORD})
    assert str(enrol.url).endswith("/console/sign-in/enrol")
    problems += page_problems(enrol, "enrolment")
    problems += page_problems(client.post("/console/sign-in/enrol", {"code": "12"}), "wrong code")
    referrer = signed_in("rana-referrer")
    problems += page_problems(referrer.get(f"/console/referrals/{referral['id']}"), "purpose page on the way")
    problems += page_problems(signed_in("nour-reader").get("/console/purpose"), "purpose form")
    problems += page_problems(referrer.post("/console/purpose", {"purpose": "no_such_purpose"}), "unknown purpose")
    assert problems == []


def test_static_files_are_served_and_hold_no_surprises(browser: Browser, console_people: dict[str, str]) -> None:
    client = browser()
    for name in ("console.css", "console.js"):
        response = client.get(f"/console/static/{name}")
        assert response.status_code == 200, name
    assert client.get("/console/static/../web.py").status_code == 404
