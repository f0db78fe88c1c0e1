"""The training page: a person's own standing against the courses their networks' agreements require.

- ``/console/training``: each course required of the person's agency, ok / expiring within 30 days /
  expired / missing (from ``GET /v1/training/status``, as the person). A coordinator also sees the
  people of the member agencies of the networks they coordinate, and records a completion for one of
  them with a form that posts ``POST /v1/training-records`` as the coordinator.
- Every page carries a warning while one of the person's courses is expiring, expired or missing
  (worked out by the page decorator, app.console.router, when the policy in force requires any course).
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import Response

from app.console import web
from app.console.router import page
from app.console.web import N_, PREFIX, Visit
from app.training import service

router = APIRouter(include_in_schema=False)
STATE_LABELS: dict[str, str] = {
    "ok": N_("current"), "expiring": N_("expires within 30 days"), "expired": N_("expired"),
    "missing": N_("not completed"),
}
FORM_FIELDS = ("person_id", "course_id", "completed_on", "expires_on")


def _people(visit: Visit) -> list[dict[str, Any]]:
    """The coordinator's people and each one's courses (no case data: names, agencies, dates)."""
    person = visit.person
    assert person is not None
    state = visit.state
    policies, today = state.policies.current, state.clock().date()
    with state.read_sessions() as session:
        return [{"id": p.id, "name": p.name, "agency": p.agency_id,
                 "courses": service.status(session, policies, p.id, p.agency_id, today)}
                for p in service.people_coordinated(session, policies, person.agency_id, person.roles, today)]


async def _page(visit: Visit, *, status_code: int = 200, error: str | None = None,
                form: dict[str, str] | None = None) -> Response:
    reply = await visit.api.get("/v1/training/status")
    if not reply.ok:
        return web.problem_page(visit, reply)
    if visit.request.query_params.get("saved") == "1" and error is None:
        visit.messages.append(("ok", visit.gettext(N_("Saved: the completion is recorded."))))
    people = await to_thread.run_sync(_people, visit) if visit.has("coordinator") else []
    return web.render(visit, "training/status.html", status_code=status_code, courses=reply.body["courses"],
                      people=people, labels={k: visit.gettext(v) for k, v in STATE_LABELS.items()},
                      error=error, form=form or {})


@router.get(f"{PREFIX}/training")
@page()
async def training(visit: Visit) -> Response:
    visit.require()
    return await _page(visit)


@router.post(f"{PREFIX}/training")
@page("coordinator")
async def record(visit: Visit) -> Response:
    submitted = await visit.request.form()
    form = {name: str(submitted.get(name, "")).strip()[:64] for name in FORM_FIELDS}
    body: dict[str, Any] = {k: v for k, v in form.items() if v}
    reply = await visit.api.post("/v1/training-records", body)
    if reply.ok:
        return web.redirect(visit, f"{PREFIX}/training?saved=1")
    if reply.status in (400, 403, 422):  # the form again, with the API's reason (a bad entry is a 422 page)
        return await _page(visit, status_code=403 if reply.status == 403 else 422, error=reply.problem(), form=form)
    return web.problem_page(visit, reply)
