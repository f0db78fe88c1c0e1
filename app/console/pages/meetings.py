"""The case conference for its chair (the network's coordinator): meetings, agendas, minutes, closing.

Reads go through the API for the person's purpose (a meeting's agenda is read for
``case_conference`` only: the page says so and offers to change the purpose). Writes go without a
purpose, so the API answers a receipt and shows nothing of the cases; the page then reads the
meeting again for the purpose chosen.

- GET /console/meetings, GET/POST /console/meetings/new
- GET /console/meetings/{id}; POST …/items (add), …/items/{n}/invitations (PATCH invited or attended),
  …/items/{n}/minutes (minutes and decision), …/close.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response

from app.console import web
from app.console.pages.coordinator import (
    chosen_network,
    codes,
    form_error,
    members_of,
    networks_of,
    refusal,
    refused_status,
    text,
)
from app.console.router import page
from app.console.web import N_, PREFIX, Visit

router = APIRouter(include_in_schema=False)
CONFERENCE = "case_conference"

KIND_LABELS = {"regular": N_("Regular case conference"), "emergency": N_("Emergency meeting")}
STATUS_LABELS = {"scheduled": N_("Scheduled"), "closed": N_("Closed")}
REASON_LABELS = {
    "newly_triaged": N_("Newly triaged"), "triage_overdue": N_("Triage overdue"),
    "assignment_overdue": N_("Assignment overdue"), "review_due": N_("Review due after closure"),
    "repeat_referral": N_("Repeat referral"), "open_actions": N_("Open actions"), "added": N_("Added by the chair"),
}
DECISION_LABELS = {
    "accept": N_("Accept"), "decline": N_("Decline"), "assign": N_("Assign"),
    "continue_support": N_("Continue support"), "close": N_("Close"), "escalate": N_("Escalate"),
    "refer_on": N_("Refer on (closed as referred elsewhere)"),
}
SAVED = {
    "scheduled": N_("Saved: the meeting is scheduled."), "item": N_("Saved: the item is on the agenda."),
    "invitations": N_("Saved: the item's invitations are changed."),
    "attendance": N_("Saved: the item's attendance is recorded."),
    "minutes": N_("Saved: the minutes are recorded."), "closed": N_("Saved: the meeting is closed."),
}


def _labels(visit: Visit, labels: dict[str, str]) -> dict[str, str]:
    return {code: visit.gettext(label) for code, label in labels.items()}


def _meeting_url(meeting_id: str, saved: str | None = None) -> str:
    return f"{PREFIX}/meetings/{quote(meeting_id, safe='')}" + (f"?saved={saved}" if saved else "")


# -- the list and scheduling ----------------------------------------------------------------------


@router.get(f"{PREFIX}/meetings")
@page("coordinator", needs_purpose=True)
async def meetings(visit: Visit) -> Response:
    network = chosen_network(visit, visit.request.query_params.get("network"))
    items: list[dict[str, Any]] = []
    if network is not None:
        reply = await visit.api.get(f"/v1/networks/{network}/meetings", purpose=visit.purpose,
                                    params={"limit": 200})
        if not reply.ok:
            return web.problem_page(visit, reply)
        items = reply.body.get("items", [])
    return web.render(visit, "coordinator/meetings.html", networks=networks_of(visit), network=network,
                      items=items, kinds=_labels(visit, KIND_LABELS), statuses=_labels(visit, STATUS_LABELS))


def _schedule_form(visit: Visit, *, status_code: int = 200, error: dict[str, Any] | None = None,
                   values: dict[str, str] | None = None) -> Response:
    held = values or {}
    network = chosen_network(visit, held.get("network") or visit.request.query_params.get("network"))
    return web.render(visit, "coordinator/meeting_new.html", status_code=status_code, networks=networks_of(visit),
                      network=network, kinds=_labels(visit, KIND_LABELS), error=error, values=held,
                      now=visit.state.clock().strftime("%Y-%m-%dT%H:%M"))


@router.get(f"{PREFIX}/meetings/new")
@page("coordinator", needs_purpose=True)
async def schedule_form(visit: Visit) -> Response:
    return _schedule_form(visit, values={"kind": "regular", "propose_agenda": "yes"})


@router.post(f"{PREFIX}/meetings/new")
@page("coordinator", needs_purpose=True)
async def schedule(visit: Visit) -> Response:
    form = await visit.request.form()
    values = {"network": text(form, "network", 200), "scheduled_for": text(form, "scheduled_for", 40),
              "kind": text(form, "kind", 20), "propose_agenda": text(form, "propose_agenda", 5)}
    network = values["network"]
    if network not in networks_of(visit):
        return _schedule_form(visit, status_code=422, values=values,
                              error=form_error(visit, N_("Choose one of your networks."), network=""))
    try:
        when = datetime.fromisoformat(values["scheduled_for"])
    except ValueError:
        return _schedule_form(visit, status_code=422, values=values,
                              error=form_error(visit, N_("Give the meeting's date and time."), scheduled_for=""))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # the form's times are UTC (it says so)
    body = {"scheduled_for": when.isoformat(), "kind": values["kind"] or "regular",
            "propose_agenda": values["propose_agenda"] == "yes"}
    reply = await visit.api.post(f"/v1/networks/{network}/meetings", body)
    if reply.ok and isinstance(reply.body, dict) and reply.body.get("id"):
        return web.redirect(visit, _meeting_url(str(reply.body["id"]), "scheduled"))
    return _schedule_form(visit, status_code=refused_status(reply), values=values, error=refusal(visit, reply))


# -- one meeting ----------------------------------------------------------------------------------


async def _meeting_page(visit: Visit, meeting_id: str, *, status_code: int = 200,
                        error: dict[str, Any] | None = None, failed: str | None = None,
                        values: dict[str, Any] | None = None) -> Response:
    reply = await visit.api.get(f"/v1/meetings/{meeting_id}", purpose=visit.purpose)
    if reply.status == 400 and visit.purpose != CONFERENCE:
        return web.render(visit, "coordinator/meeting_purpose.html", status_code=400, meeting_id=meeting_id,
                          conference=CONFERENCE, target=_meeting_url(meeting_id))
    if not reply.ok:
        return web.problem_page(visit, reply)
    meeting: dict[str, Any] = reply.body
    saved = visit.request.query_params.get("saved")
    if saved in SAVED and error is None:
        visit.messages.append(("ok", visit.gettext(SAVED[saved])))
    return web.render(
        visit, "coordinator/meeting.html", status_code=status_code, meeting=meeting,
        agenda=meeting.get("agenda", []), members=members_of(visit, [str(meeting.get("network", ""))]),
        kinds=_labels(visit, KIND_LABELS), statuses=_labels(visit, STATUS_LABELS),
        reasons=_labels(visit, REASON_LABELS), decisions=_labels(visit, DECISION_LABELS),
        outcomes=codes("closure_outcome"), error=error, failed=failed, values=values or {},
        is_open=meeting.get("status") == "scheduled")


@router.get(f"{PREFIX}/meetings/{{meeting_id}}")
@page("coordinator", needs_purpose=True)
async def meeting(visit: Visit, meeting_id: str) -> Response:
    return await _meeting_page(visit, meeting_id)


def _agencies(form: Any, name: str) -> list[str]:
    return [a for a in form.getlist(name) if isinstance(a, str) and a]


@router.post(f"{PREFIX}/meetings/{{meeting_id}}/items")
@page("coordinator", needs_purpose=True)
async def add_item(visit: Visit, meeting_id: str) -> Response:
    form = await visit.request.form()
    referral_id = text(form, "referral_id", 40)
    invited = _agencies(form, "invited")
    values = {"referral_id": referral_id, "invited": invited}
    if not referral_id:
        return await _meeting_page(visit, meeting_id, status_code=422, failed="add", values=values,
                                   error=form_error(visit, N_("Give the referral's id."), referral_id=""))
    body: dict[str, Any] = {"referral_id": referral_id}
    if invited:
        body["invited"] = invited
    reply = await visit.api.post(f"/v1/meetings/{meeting_id}/items", body)
    if reply.ok:
        return web.redirect(visit, _meeting_url(meeting_id, "item"))
    return await _meeting_page(visit, meeting_id, status_code=refused_status(reply), failed="add", values=values,
                               error=refusal(visit, reply))


@router.post(f"{PREFIX}/meetings/{{meeting_id}}/items/{{number}}/invitations")
@page("coordinator", needs_purpose=True)
async def edit_item(visit: Visit, meeting_id: str, number: int) -> Response:
    form = await visit.request.form()
    which = "attended" if text(form, "which", 10) == "attended" else "invited"
    agencies = _agencies(form, which)
    reply = await visit.api.call("PATCH", f"/v1/meetings/{meeting_id}/items/{number}", json={which: agencies})
    if reply.ok:
        return web.redirect(visit, _meeting_url(meeting_id, "attendance" if which == "attended" else "invitations"))
    return await _meeting_page(visit, meeting_id, status_code=refused_status(reply), failed=f"{which}-{number}",
                               error=refusal(visit, reply))


@router.post(f"{PREFIX}/meetings/{{meeting_id}}/items/{{number}}/minutes")
@page("coordinator", needs_purpose=True)
async def minutes(visit: Visit, meeting_id: str, number: int) -> Response:
    form = await visit.request.form()
    values = {"text": text(form, "text"), "decision": text(form, "decision", 40),
              "agencies": _agencies(form, "agencies"), "outcome": text(form, "outcome", 64)}
    if not values["text"]:
        return await _meeting_page(visit, meeting_id, status_code=422, failed=f"minutes-{number}", values=values,
                                   error=form_error(visit, N_("Write the minutes."), text=""))
    body: dict[str, Any] = {"text": values["text"]}
    if values["decision"]:
        body["decision"] = values["decision"]
        if values["decision"] == "assign":
            body["agencies"] = values["agencies"]
        if values["decision"] == "close":
            body["outcome"] = values["outcome"] or None
    reply = await visit.api.post(f"/v1/meetings/{meeting_id}/items/{number}/minutes", body)
    if reply.ok:
        return web.redirect(visit, _meeting_url(meeting_id, "minutes"))
    return await _meeting_page(visit, meeting_id, status_code=refused_status(reply), failed=f"minutes-{number}",
                               values=values, error=refusal(visit, reply))


@router.post(f"{PREFIX}/meetings/{{meeting_id}}/close")
@page("coordinator", needs_purpose=True)
async def close(visit: Visit, meeting_id: str) -> Response:
    reply = await visit.api.post(f"/v1/meetings/{meeting_id}/close")
    if reply.ok:
        return web.redirect(visit, _meeting_url(meeting_id, "closed"))
    return await _meeting_page(visit, meeting_id, status_code=refused_status(reply), failed="close",
                               error=refusal(visit, reply))
