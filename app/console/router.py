"""The console's own pages: signing in and out, the second factor, the purpose, the language, home.

The pages of each role live beside this (app/console/pages_*.py); they all stand on app.console.web.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.audit.events import AuditEvent, EventType
from app.auth.router import client_address
from app.conduct.service import owed
from app.console import people, web
from app.console.models import Person
from app.console.web import PREFIX, Visit
from app.disclose import log_refusal
from app.errors import TooManyRequests
from app.state import AppState
from app.training import service as training

log = logging.getLogger("casebridge.console")
router = APIRouter(include_in_schema=False)
class _Static(StaticFiles):
    """The console's style sheet and script, sent with ``nosniff`` and a CSP of their own like every page."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = web.CSP
        return response


STATIC = _Static(directory=str(Path(__file__).parent / "static"))

Page = Callable[..., Awaitable[Response]]


async def visit_of(request: Request) -> Visit:
    return await to_thread.run_sync(web.open_visit, request)


def page(*roles: str, needs_purpose: bool = False,
         before_conduct: bool = False) -> Callable[[Callable[..., Awaitable[Response]]], Page]:
    """A console page: opens the visit, checks sign-in, roles, purpose, and (POST) the form's CSRF token.

    A signed-in person who owes a network's code of conduct is sent to it from every page but the few
    marked ``before_conduct`` (signing out, the language, the code itself), which show no case data.
    A refusal is a page of its own (403), logged to the application log and the disclosure log.
    """

    def decorate(handler: Callable[..., Awaitable[Response]]) -> Page:
        @functools.wraps(handler)
        async def wrapper(request: Request, **kwargs: Any) -> Response:
            visit = await visit_of(request)
            if visit.person is not None:
                request.state.client_id = visit.person.id  # the access log's line names the person
            try:
                if request.method == "POST":
                    form = await request.form()
                    web.check_form(visit, form)
                if not before_conduct and visit.person is not None and visit.stage == "signed_in":
                    owes, visit.training_due = await to_thread.run_sync(_standing, visit)
                    if owes:
                        raise web.ConductOwed
                    visit.conduct_cleared = True
                if roles or needs_purpose:
                    visit.require(*roles)
                if needs_purpose and not visit.purpose:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return web.redirect(visit, f"{PREFIX}/purpose?next={_quote(target)}")
                return await handler(visit, **kwargs)
            except web.NotSignedIn:
                return web.to_sign_in(visit)
            except web.ConductOwed:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return web.redirect(visit, f"{PREFIX}/conduct?next={_quote(target if request.method == 'GET' else '')}")
            except web.CsrfRefused:
                await to_thread.run_sync(_log_refusal, visit, "csrf")
                return web.render(visit, "refused.html", status_code=403, reason="csrf")
            except web.RoleRefused:
                await to_thread.run_sync(_log_refusal, visit, "role")
                return web.render(visit, "refused.html", status_code=403, reason="role")

        # FastAPI reads the handler's parameters from this: the request, then the handler's own (path
        # parameters), without the visit, which the wrapper supplies.
        own = [p for name, p in inspect.signature(handler).parameters.items() if name != "visit"]
        request_param = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
        wrapper.__signature__ = inspect.Signature([request_param, *own])  # type: ignore[attr-defined]
        # The mark tests/console/test_console_routes.py looks for: every /console route is a page.
        wrapper.__console_page__ = {  # type: ignore[attr-defined]
            "roles": roles, "needs_purpose": needs_purpose, "before_conduct": before_conduct}
        return wrapper

    return decorate


def _standing(visit: Visit) -> tuple[bool, tuple[str, ...]]:
    """Whether the person owes a code of conduct, and (when agreements require training) their required
    courses expiring within 30 days, expired or never completed: one read of the person's standing."""
    person = visit.person
    assert person is not None
    state = visit.state
    policies = state.policies.current
    with state.read_sessions() as session:
        if owed(state, session, person_id=person.id, agency_id=person.agency_id):
            return True, ()
        if not policies.index.required_courses:
            return False, ()
        found = training.status(session, policies, person.id, person.agency_id, state.clock().date())
    return False, tuple(course.course_id for course in found if course.state != "ok")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _log_refusal(visit: Visit, reason: str) -> None:
    person = visit.person
    # The route's template, as the access log has it: a path's ids stay out of the application log.
    route = getattr(visit.request.scope.get("route"), "path", PREFIX)
    log.warning("console refusal", extra={"reason": reason, "path": route})
    log_refusal(visit.state, AuditEvent(
        event_type=EventType.denial.value, actor_agency=None,
        recipient_agency=person.agency_id if person else None, purpose=visit.purpose, decision="deny",
        agreement_id=None, rule_id=None, subject_id=None,
        details={k: v for k, v in {"client_id": person.id if person else None,
                                   "on_behalf_of": person.id if person else None,
                                   "reason": f"console-{reason}", "path": visit.request.url.path}.items()
                 if v is not None}))


def sign_in_event(state: AppState, *, person: Person | None, attempted: str, method: str, reason: str,
                  address: str) -> None:
    """Every sign-in and every failure, in the disclosure log and (without the name) the application log."""
    granted = reason == "ok"
    log.info("console sign-in" if granted else "console sign-in refused",
             extra={"method": method, "reason": reason, "person": people.fingerprint(attempted)})
    details = {"method": method, "reason": reason, "address": address}
    if person is not None:
        details.update(client_id=person.id, on_behalf_of=person.id)
    log_refusal(state, AuditEvent(
        event_type=EventType.sign_in.value, actor_agency=person.agency_id if person else None,
        recipient_agency=None, purpose=None, decision="permit" if granted else "deny", agreement_id=None,
        rule_id=None, subject_id=None, details=details))


@router.get("/")
async def root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=303)


@router.get(f"{PREFIX}/")
@page()
async def home(visit: Visit) -> Response:
    if visit.person is None or visit.stage != "signed_in":
        return web.to_sign_in(visit)
    return web.render(visit, "home.html")


# Signing in -------------------------------------------------------------------------------------


@router.get(f"{PREFIX}/sign-in")
@page()
async def sign_in_form(visit: Visit) -> Response:
    if visit.person is not None and visit.stage == "signed_in":
        return web.redirect(visit, web.safe_next(visit.request.query_params.get("next")))
    await to_thread.run_sync(web.ensure_session, visit)
    return web.render(visit, "sign_in.html", next=web.safe_next(visit.request.query_params.get("next")),
                      oidc=visit.state.settings.oidc_issuer is not None, error=None)


@router.post(f"{PREFIX}/sign-in")
@page()
async def sign_in(visit: Visit) -> Response:
    form = await visit.request.form()
    person_id = str(form.get("person", ""))[:64].strip()
    password = str(form.get("password", ""))
    target = web.safe_next(str(form.get("next", "")))
    address = client_address(visit.request)
    limits = web.runtime(visit.request).sign_in_limits
    try:
        charge = limits.charge(person_id or "-", address)
    except TooManyRequests:
        await to_thread.run_sync(lambda: sign_in_event(visit.state, person=None, attempted=person_id,
                                                       method="password", reason="rate-limited", address=address))
        refused = web.render(visit, "sign_in.html", status_code=429, next=target, error="rate-limited",
                             oidc=visit.state.settings.oidc_issuer is not None)
        refused.headers["Retry-After"] = "60"
        return refused

    def check() -> people.SignInOutcome:
        with visit.state.sessions() as session, session.begin():
            outcome = people.check_password(session, person_id, password, now=visit.state.clock())
            session.expunge_all()
            return outcome

    outcome = await to_thread.run_sync(check)
    if outcome.person is None:
        await to_thread.run_sync(lambda: sign_in_event(visit.state, person=None, attempted=person_id,
                                                       method="password", reason=outcome.reason, address=address))
        # One message for every failure: it says nothing of which part was wrong or whether the id exists
        # (not even "locked": only an existing account locks, so saying so would tell that it exists).
        return web.render(visit, "sign_in.html", status_code=401, next=target, error="failed",
                          oidc=visit.state.settings.oidc_issuer is not None)
    limits.refund(charge)
    person = outcome.person
    if people.needs_second_factor(person):
        stage = "second_factor" if person.totp_sealed else "enrol"
        pending = {"next": target, "method": "password"}
        if stage == "enrol":
            # Sealed like the enrolled key: the session row never holds it in clear.
            pending["sealed"] = people.seal_totp(visit.state.keyring, person.id, people.new_totp_secret())
        await to_thread.run_sync(lambda: web.start_session(visit, person_id=person.id, stage=stage, pending=pending))
        return web.redirect(visit, f"{PREFIX}/sign-in/{'second-factor' if stage == 'second_factor' else 'enrol'}")
    await to_thread.run_sync(lambda: _signed_in(visit, person, "password", address))
    return web.redirect(visit, target)


def _signed_in(visit: Visit, person: Person, method: str, address: str) -> None:
    web.start_session(visit, person_id=person.id, stage="signed_in")
    sign_in_event(visit.state, person=person, attempted=person.id, method=method, reason="ok", address=address)


def _pending_person(visit: Visit) -> Person | None:
    if visit.person is None:
        return None
    with visit.state.read_sessions() as session:
        person = session.get(Person, visit.person.id)
        if person is not None:
            session.expunge(person)
        return person


@router.get(f"{PREFIX}/sign-in/second-factor")
@page()
async def second_factor_form(visit: Visit) -> Response:
    if visit.stage != "second_factor":
        return web.redirect(visit, f"{PREFIX}/sign-in")
    return web.render(visit, "second_factor.html", error=None)


@router.post(f"{PREFIX}/sign-in/second-factor")
@page()
async def second_factor(visit: Visit) -> Response:
    return await _code_posted(visit, "second_factor")


async def _code_posted(visit: Visit, stage: str) -> Response:
    """A code typed on the second-factor or the enrolment page, for a session at that stage."""
    if visit.stage != stage or visit.person is None:
        return web.redirect(visit, f"{PREFIX}/sign-in")
    form = await visit.request.form()
    return await _check_code(visit, str(form.get("code", "")), enrolling=stage == "enrol")


async def _check_code(visit: Visit, code: str, *, enrolling: bool) -> Response:
    address = client_address(visit.request)
    pending = await to_thread.run_sync(web.pending_of, visit)
    assert visit.person is not None
    person_id = visit.person.id
    limits = web.runtime(visit.request).sign_in_limits
    try:
        charge = limits.charge(f"totp:{person_id}", address)
    except TooManyRequests:
        return web.render(visit, "enrol.html" if enrolling else "second_factor.html", status_code=429,
                          error="rate-limited", **(_enrolment(visit, pending) if enrolling else {}))

    def check() -> Person | None:
        with visit.state.sessions() as session, session.begin():
            person = session.get(Person, person_id)
            if person is None or person.disabled:
                return None
            secret = (people.open_sealed_totp(visit.state.keyring, person.id, str(pending.get("sealed", "")))
                      if enrolling else people.open_totp(visit.state.keyring, person))
            if not secret or not people.check_totp(session, person, str(secret), code, now=visit.state.clock()):
                return None
            if enrolling:
                person.totp_sealed = str(pending["sealed"])
            session.flush()
            session.expunge(person)
            return person

    person = await to_thread.run_sync(check)
    if person is None:
        fallback = await to_thread.run_sync(_pending_person, visit)
        await to_thread.run_sync(lambda: sign_in_event(visit.state, person=fallback, attempted=person_id,
                                                       method="totp", reason="wrong-code", address=address))
        template = "enrol.html" if enrolling else "second_factor.html"
        return web.render(visit, template, status_code=401, error="wrong-code",
                          **(_enrolment(visit, pending) if enrolling else {}))
    limits.refund(charge)
    await to_thread.run_sync(lambda: _signed_in(visit, person, f"{pending.get('method', 'password')}+totp", address))
    return web.redirect(visit, web.safe_next(pending.get("next")))


def _enrolment(visit: Visit, pending: dict[str, Any]) -> dict[str, Any]:
    import segno

    assert visit.person is not None
    secret = people.open_sealed_totp(visit.state.keyring, visit.person.id, str(pending.get("sealed", ""))) or ""
    uri = f"otpauth://totp/CaseBridge:{visit.person.id}?secret={secret}&issuer=CaseBridge"
    qr = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", omitsize=False)
    return {"secret": secret, "qr": qr}


@router.get(f"{PREFIX}/sign-in/enrol")
@page()
async def enrol_form(visit: Visit) -> Response:
    if visit.stage != "enrol" or visit.person is None:
        return web.redirect(visit, f"{PREFIX}/sign-in")
    pending = await to_thread.run_sync(web.pending_of, visit)
    return web.render(visit, "enrol.html", error=None, **_enrolment(visit, pending))


@router.post(f"{PREFIX}/sign-in/enrol")
@page()
async def enrol(visit: Visit) -> Response:
    return await _code_posted(visit, "enrol")


@router.post(f"{PREFIX}/sign-out")
@page(before_conduct=True)
async def sign_out(visit: Visit) -> Response:
    await to_thread.run_sync(web.end_session, visit)
    return web.redirect(visit, f"{PREFIX}/sign-in")


# Purpose and language ---------------------------------------------------------------------------


def purposes_for(visit: Visit) -> list[tuple[str, str]]:
    """The purposes the agreements of the person's agency name, with their descriptions."""
    if visit.person is None:
        return []
    found: dict[str, str] = {}
    for agreement in visit.state.policies.current:
        if visit.person.agency_id in agreement.party_set:
            for name, text in agreement.purposes.items():
                found.setdefault(name, text)
    return sorted(found.items())


@router.get(f"{PREFIX}/purpose")
@page("referrer", "caseworker", "coordinator", "partner_reader", "statistics_reader", "auditor", "admin")
async def purpose_form(visit: Visit) -> Response:
    return web.render(visit, "purpose.html", purposes=purposes_for(visit),
                      next=web.safe_next(visit.request.query_params.get("next")))


@router.post(f"{PREFIX}/purpose")
@page("referrer", "caseworker", "coordinator", "partner_reader", "statistics_reader", "auditor", "admin")
async def choose_purpose(visit: Visit) -> Response:
    form = await visit.request.form()
    chosen = str(form.get("purpose", ""))
    offered = dict(purposes_for(visit))
    target = web.safe_next(str(form.get("next", "")))
    if chosen not in offered:
        return web.render(visit, "purpose.html", status_code=422, purposes=sorted(offered.items()), next=target,
                          error="unknown-purpose")
    await to_thread.run_sync(lambda: web.update_session(visit, purpose=chosen))
    return web.redirect(visit, target)


@router.post(f"{PREFIX}/language")
@page(before_conduct=True)
async def choose_language(visit: Visit) -> Response:
    from app.console import i18n

    form = await visit.request.form()
    chosen = str(form.get("language", ""))
    if chosen in i18n.LANGUAGES:
        await to_thread.run_sync(lambda: web.update_session(visit, locale=chosen))
        if visit.person is not None and visit.stage == "signed_in":
            await to_thread.run_sync(_remember_language, visit, chosen)
    return web.redirect(visit, web.safe_next(str(form.get("next", ""))))


def _remember_language(visit: Visit, language: str) -> None:
    assert visit.person is not None
    with visit.state.sessions() as session, session.begin():
        person = session.get(Person, visit.person.id)
        if person is not None:
            person.locale = language


def role_pages() -> list[Any]:
    """The role pages' modules (each has a ``router``), in the order their routes are tried."""
    import importlib
    import pkgutil

    import app.console.pages as pages

    # By name, but the case page last: its /console/referrals/{referral_id} would otherwise answer
    # /console/referrals/new and /mine (tests/console/test_console_routes.py checks no route is shadowed).
    return [importlib.import_module(f"{pages.__name__}.{m.name}")
            for m in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: (m.name == "case", m.name))]
