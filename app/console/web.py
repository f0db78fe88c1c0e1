"""What every console page stands on: the session, the person, the language, the API, the response.

- The session is server-side (``console_sessions``); the cookie ``cb_console`` holds 32 random bytes
  whose SHA-256 is the row's id, HttpOnly, SameSite=Strict, Secure outside dev, Path=/console. A
  session ends after ``console_idle_minutes`` without a request and ``console_absolute_hours`` after
  sign-in; signing in always starts a new one (no fixation).
- Every POST carries the session's CSRF token (``csrf`` form field, compared in constant time), and
  a browser's ``Origin``, when sent, must be this service's own.
- Every page goes out with a strict Content-Security-Policy (no inline script or style), no caching,
  no framing, no referrer.
- Case data reaches a page only from the API (``Visit.api``): an in-process request to the same
  routes, with an access token naming the person (client and ``act`` both the person's id) and the
  purpose the person chose. A page can show nothing the API would refuse, and every read leaves the
  same log entry an API client's does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.agencies.models import Agency
from app.auth.ratelimit import TokenEndpointLimits
from app.console import i18n
from app.console.models import ConsoleSession, Person
from app.observability import current_request_id
from app.policy.training import is_training_agency
from app.state import AppState, get_state

log = logging.getLogger("casebridge.console")

COOKIE = "cb_console"
PREFIX = "/console"
TEMPLATES = jinja2.FileSystemLoader(str(__import__("pathlib").Path(__file__).parent / "templates"))
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` with the console's own
    # form posts, which the CSRF check must refuse; other sites still get no referrer.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def N_(message: str) -> str:
    """Marks a string for the catalogs; translated where it is shown."""
    return message


ROLE_LABELS = {
    "referrer": N_("Referrer"), "caseworker": N_("Caseworker"), "coordinator": N_("Coordinator"),
    "partner_reader": N_("Partner reader"), "statistics_reader": N_("Statistics reader"),
    "auditor": N_("Auditor / data-protection officer"), "admin": N_("Administrator"),
    "signatory": N_("Agreement signatory"),
}


class NotSignedIn(Exception):
    """The page needs a signed-in person (answered with a redirect to the sign-in page)."""


class CsrfRefused(Exception):
    """A form came without this session's token, or from another origin (answered 403, logged)."""


class RoleRefused(Exception):
    """The person holds none of the page's roles (answered 403 with a page saying so)."""


class ConductOwed(Exception):
    """The person has a code of conduct to accept before any case data (answered with a redirect to it)."""


@dataclass(frozen=True, slots=True)
class Seen:
    """The person behind a session, as read at the start of the request."""

    id: str
    name: str
    agency_id: str
    agency_name: str
    sector: str
    roles: frozenset[str]
    locale: str | None


@dataclass(slots=True)
class Visit:
    """One request to the console: its session (maybe anonymous), person and language."""

    request: Request
    state: AppState
    session_id: str | None
    csrf: str
    stage: str
    person: Seen | None
    purpose: str | None
    language: str
    new_cookie: str | None = None
    messages: list[tuple[str, str]] = field(default_factory=list)
    token: str | None = None  # the person's access token for this request's API calls (Api)
    conduct_cleared: bool = False  # the page's gate found no code of conduct owed (the Api refuses until then)
    training_due: tuple[str, ...] = ()  # the person's required courses expiring, expired or missing (a banner)

    def gettext(self, message: str) -> str:
        return i18n.translations(self.language).gettext(message)

    def has(self, *roles: str) -> bool:
        return self.person is not None and not self.person.roles.isdisjoint(roles)

    def require(self, *roles: str) -> Seen:
        if self.person is None or self.stage != "signed_in":
            raise NotSignedIn
        if roles and self.person.roles.isdisjoint(roles):
            raise RoleRefused
        return self.person

    @property
    def api(self) -> Api:
        return Api(self)


class Runtime:
    """The console's per-process parts: one Jinja environment per language, the sign-in limits."""

    def __init__(self, state: AppState) -> None:
        settings = state.settings
        self.environments = {language: _environment(language) for language in i18n.LANGUAGES}
        self.sign_in_limits = TokenEndpointLimits(settings.model_copy(update={
            "token_client_per_minute": settings.console_sign_in_per_minute,
            "token_client_burst": settings.console_sign_in_burst,
            "token_address_per_minute": settings.console_sign_in_per_minute * 3,
            "token_address_burst": settings.console_sign_in_burst * 3,
        }))


def _environment(language: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=TEMPLATES, autoescape=True, extensions=["jinja2.ext.i18n"],
                             trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = lambda value: i18n.when(value, language)
    env.globals.update(language=language, direction=i18n.direction(language), languages=[
        (code, i18n.language_name(code)) for code in i18n.LANGUAGES])
    return env


def runtime(request: Request) -> Runtime:
    found: Runtime | None = getattr(request.app.state, "console", None)
    if found is None:
        found = Runtime(get_state(request))
        request.app.state.console = found
    return found


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _expired(row: ConsoleSession, state: AppState, now: datetime) -> bool:
    settings = state.settings
    if now - row.last_seen_at > timedelta(minutes=settings.console_idle_minutes):
        return True
    started = row.signed_in_at or row.created_at
    return now - started > timedelta(hours=settings.console_absolute_hours)


TOUCH_EVERY = timedelta(seconds=60)
"""A session's last-seen time is written at most this often (a page view is a read, not a write)."""


def open_visit(request: Request) -> Visit:
    """The request's session (expired ones are ended), its person (disabled ones are signed out)."""
    state = get_state(request)
    now = state.clock()
    token = request.cookies.get(COOKIE)
    row_id = _digest(token) if token and len(token) <= 100 else None
    with state.read_sessions() as session:
        row = session.get(ConsoleSession, row_id) if row_id else None
        person = session.get(Person, row.person_id) if row is not None and row.person_id else None
        ended = row is not None and (_expired(row, state, now) or (
            row.person_id is not None and (person is None or person.disabled)))
        seen = _seen(session, person) if person is not None and not ended else None
        snapshot = None if row is None else (row.id, row.csrf, row.stage, row.purpose, row.locale, row.last_seen_at)
    accept = request.headers.get("accept-language")
    if snapshot is None or ended:
        if snapshot is not None:
            _delete_session(state, snapshot[0])
        return Visit(request, state, None, "", "anonymous", None, None, i18n.negotiate(None, accept))
    session_id, csrf, stage, purpose, locale, last_seen = snapshot
    if now - last_seen > TOUCH_EVERY:
        with state.sessions() as session, session.begin():
            touched = session.get(ConsoleSession, session_id)
            if touched is not None:
                touched.last_seen_at = now
    return Visit(request, state, session_id, csrf, stage, seen, purpose,
                 i18n.negotiate(locale or (seen.locale if seen else None), accept))


def _delete_session(state: AppState, session_id: str) -> None:
    with state.sessions() as session, session.begin():
        session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))


def _seen(session: Session, person: Person) -> Seen:
    agency = session.get(Agency, person.agency_id)
    return Seen(person.id, person.name, person.agency_id, agency.name if agency else person.agency_id,
                agency.sector if agency else "", frozenset(person.roles), person.locale)


def ensure_session(visit: Visit) -> None:
    """Give an anonymous visitor a session (for the sign-in form's CSRF token and language)."""
    if visit.session_id is not None:
        return
    start_session(visit, person_id=None, stage="anonymous")


def start_session(visit: Visit, *, person_id: str | None, stage: str,
                  pending: Mapping[str, Any] | None = None, locale: str | None = None) -> None:
    """A new session replacing the visitor's old one (fixation: the old id never becomes signed in)."""
    state = visit.state
    token = secrets.token_urlsafe(32)
    now = state.clock()
    with state.sessions() as session, session.begin():
        if visit.session_id is not None:
            previous = session.get(ConsoleSession, visit.session_id)
            if locale is None and previous is not None:
                locale = previous.locale  # the language chosen before signing in stays chosen
            session.execute(delete(ConsoleSession).where(ConsoleSession.id == visit.session_id))
        session.add(ConsoleSession(id=_digest(token), person_id=person_id, stage=stage,
                                   csrf=secrets.token_urlsafe(32), purpose=None,
                                   locale=locale, pending=dict(pending) if pending else None,
                                   created_at=now, signed_in_at=now if stage == "signed_in" else None,
                                   last_seen_at=now))
        row_csrf = session.get(ConsoleSession, _digest(token))
        visit.csrf = row_csrf.csrf if row_csrf else ""
    visit.session_id = _digest(token)
    visit.stage = stage
    visit.new_cookie = token
    visit.purpose = None


def update_session(visit: Visit, **values: Any) -> None:
    if visit.session_id is None:
        return
    with visit.state.sessions() as session, session.begin():
        row = session.get(ConsoleSession, visit.session_id)
        if row is not None:
            for name, value in values.items():
                setattr(row, name, value)


def pending_of(visit: Visit) -> dict[str, Any]:
    if visit.session_id is None:
        return {}
    with visit.state.read_sessions() as session:
        row = session.get(ConsoleSession, visit.session_id)
        return dict(row.pending or {}) if row is not None else {}


def end_session(visit: Visit) -> None:
    if visit.session_id is not None:
        with visit.state.sessions() as session, session.begin():
            session.execute(delete(ConsoleSession).where(ConsoleSession.id == visit.session_id))
    visit.session_id = None
    visit.person = None


def end_sessions_of(state: AppState, person_id: str) -> int:
    with state.sessions() as session, session.begin():
        ids = list(session.scalars(select(ConsoleSession.id).where(ConsoleSession.person_id == person_id)))
        session.execute(delete(ConsoleSession).where(ConsoleSession.person_id == person_id))
    return len(ids)


def check_form(visit: Visit, form: Mapping[str, Any]) -> None:
    """CSRF: the form's token is this session's, and a sent Origin is our own."""
    origin = visit.request.headers.get("origin")
    if origin is not None and origin != "null":
        ours = f"{visit.request.url.scheme}://{visit.request.url.netloc}"
        if origin.rstrip("/") != ours:
            raise CsrfRefused
    elif origin == "null":
        raise CsrfRefused
    sent = form.get("csrf")
    if visit.session_id is None or not isinstance(sent, str) or not visit.csrf or \
            not hmac.compare_digest(sent.encode(), visit.csrf.encode()):
        raise CsrfRefused


def safe_next(target: str | None) -> str:
    """Only a path of the console itself (no open redirect)."""
    if not target:
        return f"{PREFIX}/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"{PREFIX}/") or "\\" in target:
        return f"{PREFIX}/"
    return target


def finish(visit: Visit, response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if visit.new_cookie is not None:
        response.set_cookie(COOKIE, visit.new_cookie, httponly=True, samesite="strict", path=PREFIX,
                            secure=not visit.state.settings.is_dev,
                            max_age=visit.state.settings.console_absolute_hours * 3600)
    elif visit.session_id is None and COOKIE in visit.request.cookies:
        response.delete_cookie(COOKIE, path=PREFIX)
    return response


def render(visit: Visit, template: str, status_code: int = 200, **context: Any) -> Response:
    env = runtime(visit.request).environments[visit.language]
    html = env.get_template(template).render(
        visit=visit, person=visit.person, csrf=visit.csrf, purpose=visit.purpose,
        prefix=PREFIX, path=visit.request.url.path, messages=visit.messages,
        role_names={role: visit.gettext(label) for role, label in ROLE_LABELS.items()},
        field_label=lambda name: field_label(visit, name),
        code_label=lambda vocabulary, code: code_label(visit, vocabulary, code),
        training=visit.person is not None and is_training_agency(visit.state.policies.current,
                                                                  visit.person.agency_id), **context)
    return finish(visit, HTMLResponse(html, status_code=status_code))


PROBLEM_TEXT = {
    401: (N_("Signed out"), N_("Your session ended. Sign in again.")),
    403: (N_("Not allowed"), N_("The agreements do not let your agency see this for the purpose you chose.")),
    404: (N_("Not found"), N_("There is nothing here, or nothing your agency may know of.")),
    409: (N_("Changed meanwhile"), N_("Someone changed this since you opened it. Reload and try again.")),
    422: (N_("Not accepted"), N_("Some of what you entered was not accepted.")),
    428: (N_("Changed meanwhile"), N_("Reload the page and try again.")),
    429: (N_("Too many requests"), N_("Wait a moment and try again.")),
}
UNAVAILABLE = (N_("Not available"), N_("The service could not do this now. Nothing was changed; try again."))


def problem_page(visit: Visit, reply: Reply) -> Response:
    """The API's refusal as a page: a translated heading and explanation, the service's own detail beside."""
    heading, explanation = PROBLEM_TEXT.get(reply.status, UNAVAILABLE)
    status = reply.status if 400 <= reply.status < 600 else 502
    return render(visit, "problem.html", status_code=status, heading=visit.gettext(heading),
                  explanation=visit.gettext(explanation), detail=reply.problem())


def field_label(visit: Visit, name: str) -> str:
    """A field's label in the person's language (the field's own name when the catalogs have none)."""
    label = FIELD_LABELS.get(name)
    return visit.gettext(label) if label else name


FIELD_LABELS: dict[str, str] = {
    "id": N_("Id"), "network": N_("Network"), "status": N_("Status"), "status_history": N_("Status history"),
    "outcome": N_("Outcome"), "referring_agency": N_("Referring agency"),
    "assigned_agencies": N_("Assigned agencies"), "updated_at": N_("Last changed"), "created_at": N_("Created"),
    "concerns": N_("Concerns"), "requested_services": N_("Requested services"),
    "vulnerability_factors": N_("Vulnerability factors"), "protective_factors": N_("Protective factors"),
    "risk_level": N_("Risk level"), "urgency": N_("Urgency"), "consent": N_("Consent"),
    "intervention_type": N_("Intervention type"), "narrative": N_("Narrative"),
    "do_not_contact": N_("Do not contact"), "subject": N_("Person"), "subject.id": N_("Person id"),
    "subject.age_band": N_("Age band"), "subject.district": N_("District"), "subject.gender": N_("Gender"),
    "subject.language": N_("Language"), "subject.given_name": N_("Given name"),
    "subject.family_name": N_("Family name"), "subject.date_of_birth": N_("Date of birth"),
    "subject.identifiers": N_("Identifiers"), "schema": N_("Schema"), "schema_version": N_("Schema version"),
    "notes": N_("Notes"), "reason": N_("Reason"), "at": N_("When"), "by": N_("By"), "to": N_("To"),
    "from": N_("From"),
}


def code_label(visit: Visit, vocabulary: str, code: Any) -> str:
    """A vocabulary code's label in the person's language (the vocabularies carry en, ar, mk, sq)."""
    from app.vocabularies.catalog import vocabularies

    found = vocabularies().get(vocabulary)
    if found is None or not isinstance(code, str) or not found.has(code):
        return str(code)
    return found.label(code, [visit.language])


def redirect(visit: Visit, target: str) -> Response:
    return finish(visit, RedirectResponse(target, status_code=303))


def to_sign_in(visit: Visit) -> Response:
    target = visit.request.url.path + (f"?{visit.request.url.query}" if visit.request.url.query else "")
    return redirect(visit, f"{PREFIX}/sign-in?next={quote(target, safe='')}")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the API answered: status, JSON body (a problem's too), headers."""

    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def problem(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or "")
        return ""


class Api:
    """The API, in process, as the person: the only way a page reaches case data or changes anything."""

    def __init__(self, visit: Visit) -> None:
        self.visit = visit

    def _headers(self, purpose: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
        person = self.visit.person
        if person is None or self.visit.stage != "signed_in":  # half signed in (second factor to come): no
            raise NotSignedIn
        if not self.visit.conduct_cleared:  # a page let through before the code of conduct reads nothing either
            raise ConductOwed
        if self.visit.token is None:  # one token a request, however many API calls its page makes
            self.visit.token, _ = self.visit.state.tokens.issue(
                client_id=person.id, agency_id=person.agency_id, sector=person.sector,
                roles=sorted(person.roles), act=person.id)
        headers = {"Authorization": f"Bearer {self.visit.token}", "Accept": "application/json"}
        if purpose:
            headers["X-Purpose"] = purpose
        request_id = current_request_id()
        if isinstance(request_id, str):
            headers["X-Request-ID"] = f"{request_id[:40]}-c{secrets.token_hex(3)}"
        headers.update(extra or {})
        return headers

    async def call(self, method: str, path: str, *, purpose: str | None = None, json: Any = None,
                   params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> Reply:
        if not _plain_path(path):  # a URL's path parameter holding "..", "?" or "#" never reaches another route
            return Reply(404, {"title": "Not Found", "detail": "There is no such resource."}, {})
        transport = httpx.ASGITransport(app=self.visit.request.app, client=("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport, base_url="http://console.internal") as client:
            # In a task of its own: the API's request context (its request id in the log) stays its own.
            answer = await asyncio.create_task(client.request(
                method, path, json=json, params=_clean(params), headers=self._headers(purpose, headers)))
        try:
            body = answer.json() if answer.content else None
        except ValueError:
            body = answer.text
        return Reply(answer.status_code, body, dict(answer.headers))

    async def get(self, path: str, *, purpose: str | None = None, params: Mapping[str, Any] | None = None) -> Reply:
        return await self.call("GET", path, purpose=purpose, params=params)

    async def post(self, path: str, body: Any = None, *, purpose: str | None = None,
                   headers: Mapping[str, str] | None = None) -> Reply:
        return await self.call("POST", path, purpose=purpose, json=body, headers=headers)


def _plain_path(path: str) -> bool:
    """An API path with no query, fragment or dot segment (pages build paths from what the URL gave them)."""
    return path.startswith("/") and not any(c in path for c in "?#\\") and \
        not any(part in (".", "..") for part in path.split("/"))


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: v for k, v in params.items() if v not in (None, "")}


PageHandler = Callable[..., Any]
