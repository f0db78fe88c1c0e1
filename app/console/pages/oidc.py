"""Sign-in through the city's identity provider: the two routes (the logic is app/console/oidc.py).

    GET /console/sign-in/oidc?next=…            discovery, a pending request, 303 to the provider
    GET /console/sign-in/oidc/callback?code&state  the provider's answer: a signed-in session, or a refusal

Every success and every refusal goes to the disclosure log (``sign_in`` entry, method ``oidc``, the
reason). Refusals are the sign-in page again with its "did not succeed" message (400: the request was
not ours or is used up, 401: the provider's answer did not hold, 403: the identity maps to no person
who may sign in); a provider that cannot be reached is a 503 page that says so.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from app.auth.router import client_address
from app.console import oidc, web
from app.console.models import ConsoleSession, Person
from app.console.router import page, sign_in_event
from app.console.web import N_, PREFIX, Visit

router = APIRouter(include_in_schema=False)
COOKIE = "cb_oidc"
COOKIE_PATH = f"{PREFIX}/sign-in/oidc"
UNREACHABLE = N_("Your organisation's sign-in service cannot be reached now. Try again in a few minutes, or "
                 "sign in with your account and password.")


@router.get(f"{PREFIX}/sign-in/oidc")
@page()
async def start(visit: Visit) -> Response:
    settings = visit.state.settings
    target = _plain(web.safe_next(visit.request.query_params.get("next")))
    if not settings.oidc_issuer or not settings.oidc_client_id:
        return web.redirect(visit, f"{PREFIX}/sign-in")
    if visit.person is not None and visit.stage == "signed_in":
        return web.redirect(visit, target)
    try:
        metadata = await oidc.discover(settings)
    except oidc.OidcRefused as refused:
        return await _refuse(visit, refused, target)
    own = f"{visit.request.url.scheme}://{visit.request.url.netloc}"
    url, pending = oidc.begin(settings, metadata, oidc.redirect_uri(settings, own), target,
                              visit.state.clock().timestamp())
    await to_thread.run_sync(lambda: web.start_session(visit, person_id=None, stage="anonymous",
                                                       pending={"oidc": pending}))
    handle = visit.new_cookie
    response = web.finish(visit, RedirectResponse(url, status_code=303))
    response.set_cookie(COOKIE, handle or "", max_age=oidc.PENDING_SECONDS, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=not settings.is_dev)
    return response


@router.get(f"{PREFIX}/sign-in/oidc/callback")
@page()
async def callback(visit: Visit) -> Response:
    settings = visit.state.settings
    query = visit.request.query_params
    handle = visit.request.cookies.get(COOKIE)
    pending = await to_thread.run_sync(_consume, visit, handle) if handle and len(handle) <= 100 else None
    target = _plain(web.safe_next(str(pending.get("next")))) if pending else f"{PREFIX}/"
    address = client_address(visit.request)
    identity: oidc.Identity | None = None
    try:
        if pending is None:
            raise oidc.OidcRefused("no-pending-request", 400)
        oidc.check_state(pending, query.get("state"), visit.state.clock().timestamp())
        if query.get("error"):
            raise oidc.OidcRefused(f"provider-error: {query.get('error')}"[:80], 401)
        code = query.get("code")
        if not code:
            raise oidc.OidcRefused("no-code", 400)
        metadata = await oidc.discover(settings)
        sent_issuer = query.get("iss")  # RFC 9207: the answer names its issuer (mix-up defence)
        if (sent_issuer is not None or metadata.get("authorization_response_iss_parameter_supported")) \
                and sent_issuer != metadata["issuer"]:
            raise oidc.OidcRefused("issuer-mismatch", 400)
        token = await oidc.exchange(settings, metadata, pending, code)
        identity = await oidc.identify(settings, metadata, token, str(pending["nonce"]))
        person = await to_thread.run_sync(_person, visit, identity)
    except oidc.OidcRefused as refused:
        return await _refuse(visit, refused, target, identity)
    await to_thread.run_sync(_signed_in, visit, person, address)
    visit.person = await to_thread.run_sync(_seen, visit, person.id)
    response = web.render(visit, "oidc/continue.html", next=target)
    # A navigation of the browser's own from this page: the Strict session cookie goes with it.
    response.headers["Refresh"] = f"0; url={target}"
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _plain(target: str) -> str:
    """The target as printable ASCII (it goes into a header), else the start page."""
    return target if target.isascii() and target.isprintable() else f"{PREFIX}/"


def _consume(visit: Visit, handle: str) -> dict[str, Any] | None:
    """The pending request of the handle's anonymous session, deleted as it is read (one use)."""
    row_id = web._digest(handle)
    with visit.state.sessions() as session, session.begin():
        found = session.execute(delete(ConsoleSession).where(ConsoleSession.id == row_id,
                                                             ConsoleSession.person_id.is_(None))
                                .returning(ConsoleSession.pending)).first()
    if visit.session_id == row_id:
        visit.session_id = None
    if found is None or not isinstance(found[0], dict) or not isinstance(found[0].get("oidc"), dict):
        return None
    return dict(found[0]["oidc"])


def _person(visit: Visit, identity: oidc.Identity) -> Person:
    """The identity's person; a first sign-in racing another of the same person finds the one made."""
    for attempt in (1, 2):
        try:
            with visit.state.sessions() as session, session.begin():
                person = oidc.sign_in_person(session, visit.state.settings, identity)
                session.flush()
                session.expunge(person)
                return person
        except IntegrityError:
            if attempt == 2:
                raise oidc.OidcRefused("conflict", 403) from None
    raise AssertionError("unreachable")


def _signed_in(visit: Visit, person: Person, address: str) -> None:
    web.start_session(visit, person_id=person.id, stage="signed_in")
    sign_in_event(visit.state, person=person, attempted=person.id, method="oidc", reason="ok", address=address)


def _seen(visit: Visit, person_id: str) -> web.Seen | None:
    with visit.state.read_sessions() as session:
        person = session.get(Person, person_id)
        return web._seen(session, person) if person is not None else None


async def _refuse(visit: Visit, refused: oidc.OidcRefused, target: str,
                  identity: oidc.Identity | None = None) -> Response:
    address = client_address(visit.request)
    attempted = identity.subject if identity else "-"

    def record() -> None:
        sign_in_event(visit.state, person=None, attempted=attempted, method="oidc", reason=refused.reason,
                      address=address)
        web.ensure_session(visit)

    await to_thread.run_sync(record)
    if refused.status == 503:
        response = web.render(visit, "problem.html", status_code=503, heading=visit.gettext(N_("Not available")),
                              explanation=visit.gettext(UNREACHABLE), detail=None)
    else:
        response = web.render(visit, "sign_in.html", status_code=refused.status, next=target, error="oidc",
                              oidc=True)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response
