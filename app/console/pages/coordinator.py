"""The coordinator's pages: the network's work list, deciding a referral's next step, and actions.

Everything of a case comes from the API (``visit.api``) with the person's purpose; the lifecycle
table (which status may follow which, app/referrals/lifecycle.py), the networks and their members
(the agreements in force) and the vocabularies are not case data and are read directly.

- GET /console/worklist: what is due in the network (GET /v1/networks/{id}/worklist) and what waits
  for a step (GET /v1/referrals, status submitted / triaged / accepted), grouped by kind; and the
  network's agreements whose review_by comes within 60 or 30 days (no case data).
- GET/POST /console/referrals/{id}/decide: triage, accept, decline, assign, close, transfer
  (POST /v1/referrals/{id}/transitions, with the ETag of the read as If-Match).
- GET /console/actions, POST /console/actions/{id}/status, GET/POST /console/referrals/{id}/actions/new.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response

from app.console import web
from app.console.router import page
from app.console.web import N_, PREFIX, Reply, Visit
from app.referrals.lifecycle import Actor, Status, targets_for
from app.vocabularies.catalog import vocabularies

router = APIRouter(include_in_schema=False)

# -- shared by the coordinator's pages (app/console/pages/meetings.py too) --------------------------

REFUSAL_TEXT = {
    400: N_("The request was not accepted for the purpose you chose. Nothing was changed."),
    403: N_("You may not do this. Nothing was changed."),
    404: N_("There is nothing here, or nothing your agency may know of. Nothing was changed."),
    409: N_("This is not possible from where it stands now. Nothing was changed."),
    412: N_("Someone changed this since you opened it: what it is now is shown below. Nothing was changed."),
    422: N_("Some of what you entered was not accepted. Nothing was changed."),
    428: N_("Reload the page and try again. Nothing was changed."),
    429: N_("Too many requests: wait a moment and try again. Nothing was changed."),
}
UNAVAILABLE = N_("The service could not do this now. Nothing was changed; try again.")
_FIELD = re.compile(r"^\$\.([A-Za-z_]+)")


def refusal(visit: Visit, reply: Reply) -> dict[str, Any]:
    """An API refusal for a form: a translated message, the service's own words, and errors by field."""
    fields: dict[str, str] = {}
    body = reply.body if isinstance(reply.body, dict) else {}
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            found = _FIELD.match(str(error.get("path", "")))
            if found:
                fields.setdefault(found.group(1), str(error.get("message", "")))
    return {"message": visit.gettext(REFUSAL_TEXT.get(reply.status, UNAVAILABLE)), "detail": reply.problem(),
            "fields": fields, "status": reply.status}


def form_error(visit: Visit, message: str, **fields: str) -> dict[str, Any]:
    """A form the console itself refuses (before asking the API): the same shape as ``refusal``."""
    return {"message": visit.gettext(message), "detail": "", "fields": fields, "status": 422}


def refused_status(reply: Reply) -> int:
    """The status a refused write's page answers with: the API's own (never a 5xx for a refusal)."""
    return reply.status if 400 <= reply.status < 500 else 502


def networks_of(visit: Visit) -> list[str]:
    """The networks of the person's agency (for a coordinator: the ones it may coordinate)."""
    assert visit.person is not None
    return list(visit.state.policies.current.networks_of(visit.person.agency_id))


def chosen_network(visit: Visit, asked: str | None) -> str | None:
    options = networks_of(visit)
    if asked and asked in options:
        return asked
    return options[0] if options else None


def members_of(visit: Visit, network_ids: Iterable[str]) -> list[str]:
    """The member agencies of the networks (sorted, each once)."""
    policies = visit.state.policies.current
    found: set[str] = set()
    for network_id in network_ids:
        network = policies.network(network_id)
        if network is not None:
            found |= network.members
    return sorted(found)


def codes(vocabulary: str) -> list[str]:
    return [c.code for c in vocabularies()[vocabulary].codes]


def text(form: Mapping[str, Any], name: str, limit: int = 10_000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def new_key() -> str:
    """An Idempotency-Key for one rendering of a form: a second submission of it is a replay."""
    return "console-" + secrets.token_urlsafe(18)


# -- the work list --------------------------------------------------------------------------------

KINDS: dict[str, str] = {
    "new": N_("New referrals"),
    "triaged": N_("Triaged, waiting for a decision"),
    "accepted": N_("Accepted, waiting for an assignment"),
    "triage_overdue": N_("Triage overdue"),
    "assignment_overdue": N_("Assignment overdue"),
    "review_due": N_("Review due after closure"),
    "repeat_referral": N_("Repeat referrals"),
    "agreement_review_30": N_("Agreements to review within 30 days"),
    "agreement_review_60": N_("Agreements to review within 60 days"),
}
AGREEMENT_KINDS = frozenset({"agreement_review_30", "agreement_review_60"})
WAITING = {"submitted": "new", "triaged": "triaged", "accepted": "accepted"}
STATUS_OF = {kind: status for status, kind in WAITING.items()}
PREVIEW = 10  # rows of each kind on the overview; "show all" pages through the rest
PAGE = 50


@router.get(f"{PREFIX}/worklist")
@page("coordinator", needs_purpose=True)
async def worklist(visit: Visit) -> Response:
    """The overview (the first rows of each kind), or one kind a page at a time (``kind`` and ``cursor``).

    Every row listed is a row the API listed, and logged, for the purpose: the page asks for no more
    than it shows (PREVIEW of each kind, or a PAGE of one kind).
    """
    query = visit.request.query_params
    network = chosen_network(visit, query.get("network"))
    kind = query.get("kind", "")
    kind = kind if kind in KINDS else ""
    cursor = query.get("cursor") or None
    groups: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    more: dict[str, str | None] = {}
    if network is not None:
        for wanted in ([kind] if kind else list(KINDS)):
            limit = PAGE if kind else PREVIEW
            reply = await (_waiting(visit, network, wanted, limit, cursor) if wanted in STATUS_OF
                           else _due(visit, network, wanted, limit, cursor))
            if not reply.ok:
                return web.problem_page(visit, reply)
            groups[wanted] = _reviews(reply.body) if wanted in AGREEMENT_KINDS else _rows(reply.body, network)
            more[wanted] = reply.body.get("next_cursor")
    shown = [(k, visit.gettext(label), groups[k], more.get(k)) for k, label in KINDS.items() if not kind or k == kind]
    return web.render(visit, "coordinator/worklist.html", networks=networks_of(visit), network=network,
                      kinds=[(k, visit.gettext(label)) for k, label in KINDS.items()], kind=kind, groups=shown,
                      total=sum(len(items) for _, _, items, _ in shown), agreement_kinds=AGREEMENT_KINDS)


async def _due(visit: Visit, network: str, kind: str, limit: int, cursor: str | None) -> web.Reply:
    return await visit.api.get(f"/v1/networks/{network}/worklist", purpose=visit.purpose,
                               params={"kind": kind, "limit": limit, "cursor": cursor})


async def _waiting(visit: Visit, network: str, kind: str, limit: int, cursor: str | None) -> web.Reply:
    return await visit.api.get("/v1/referrals", purpose=visit.purpose,
                               params={"status": STATUS_OF[kind], "limit": limit, "cursor": cursor})


def _rows(body: Any, network: str) -> list[dict[str, Any]]:
    rows = []
    for item in body.get("items", []) if isinstance(body, dict) else []:
        if "kind" in item:  # a work-list item
            rows.append({"referral_id": item.get("referral_id"), "since": item.get("due_since"),
                         "status": item.get("status"), "urgency": item.get("urgency"), "detail": item.get("detail")})
        elif item.get("network", network) == network:  # a referral waiting for the coordinator
            rows.append({"referral_id": item.get("id"), "since": item.get("created_at"),
                         "status": item.get("status"), "urgency": item.get("urgency"), "detail": None})
    return rows


def _reviews(body: Any) -> list[dict[str, Any]]:
    """The agreements due for review (the work list's `agreements`): id, version, review_by, days left."""
    found = body.get("agreements", []) if isinstance(body, dict) else []
    return [{key: item.get(key) for key in ("agreement", "version", "review_by", "days_left")} for item in found]


# -- deciding a referral's next step --------------------------------------------------------------

STEP_LABELS: dict[str, str] = {
    "triaged": N_("Triage"), "accepted": N_("Accept"), "declined": N_("Decline"), "assigned": N_("Assign"),
    "in_intervention": N_("Start the intervention"), "closed": N_("Close"), "withdrawn": N_("Withdraw"),
    "transferred": N_("Transfer to another network"),
}


def _coordinator_steps(status: str | None) -> list[str]:
    if status not in {s.value for s in Status}:
        return []
    return [s.value for s in targets_for(Status(status), frozenset({Actor.coordinator}))]


async def _decide_page(visit: Visit, referral_id: str, *, status_code: int = 200,
                       error: dict[str, Any] | None = None, values: Mapping[str, Any] | None = None) -> Response:
    reply = await visit.api.get(f"/v1/referrals/{referral_id}", purpose=visit.purpose)
    if not reply.ok:
        return web.problem_page(visit, reply)
    referral: dict[str, Any] = reply.body
    network = referral.get("network") or chosen_network(visit, None)
    policies = visit.state.policies.current
    steps = [(step, visit.gettext(STEP_LABELS.get(step, step))) for step in _coordinator_steps(referral.get("status"))]
    held = values or {}
    return web.render(
        visit, "coordinator/decide.html", status_code=status_code, referral=referral,
        etag=reply.headers.get("etag", ""), key=new_key(), steps=steps,
        members=members_of(visit, [network] if network else []), outcomes=codes("closure_outcome"),
        other_networks=sorted(n for n in policies.networks if n != network), error=error,
        chosen=held.get("to", ""), chosen_agencies=held.get("agencies", referral.get("assigned_agencies") or []),
        chosen_outcome=held.get("outcome", ""), chosen_network=held.get("to_network", ""),
        reason=held.get("reason", ""))


@router.get(f"{PREFIX}/referrals/{{referral_id}}/decide")
@page("coordinator", needs_purpose=True)
async def decide_form(visit: Visit, referral_id: str) -> Response:
    moved = visit.request.query_params.get("moved")
    if moved in vocabularies()["referral_status"].codes_set:
        visit.messages.append(("ok", visit.gettext(N_("Saved: the referral is now “%(status)s”.")) % {
            "status": web.code_label(visit, "referral_status", moved)}))
    return await _decide_page(visit, referral_id)


@router.post(f"{PREFIX}/referrals/{{referral_id}}/decide")
@page("coordinator", needs_purpose=True)
async def decide(visit: Visit, referral_id: str) -> Response:
    form = await visit.request.form()
    target = text(form, "to", 40)
    agencies = [a for a in form.getlist("agencies") if isinstance(a, str)]
    values = {"to": target, "agencies": agencies, "outcome": text(form, "outcome", 64),
              "to_network": text(form, "to_network", 200), "reason": text(form, "reason", 2000)}
    if not target:
        return await _decide_page(visit, referral_id, status_code=422, values=values,
                                  error=form_error(visit, N_("Choose what to do."), to=""))
    body: dict[str, Any] = {"to": target}
    if values["reason"]:
        body["reason"] = values["reason"]
    if target == Status.assigned.value:
        body["agencies"] = agencies
    if target == Status.closed.value:
        body["outcome"] = values["outcome"] or None
    if target == Status.transferred.value:
        body["to_network"] = values["to_network"] or None
    headers = {"Idempotency-Key": text(form, "key", 200) or new_key()}
    etag = text(form, "etag", 200)
    if etag:
        headers["If-Match"] = etag
    reply = await visit.api.post(f"/v1/referrals/{referral_id}/transitions", body, headers=headers)
    if reply.ok:
        return web.redirect(visit, f"{PREFIX}/referrals/{quote(referral_id, safe='')}/decide"
                                   f"?moved={quote(target, safe='')}")
    return await _decide_page(visit, referral_id, status_code=refused_status(reply), values=values,
                              error=refusal(visit, reply))


# -- actions --------------------------------------------------------------------------------------

ACTION_STATES = {"due": N_("Open (overdue included)"), "overdue": N_("Overdue"), "all": N_("All")}
ACTION_STATUS_LABELS = {"open": N_("Open"), "done": N_("Done"), "cancelled": N_("Cancelled"),
                        "overdue": N_("Overdue")}
SAVED = {"created": N_("Saved: the action is set."), "status": N_("Saved: the action's status is changed.")}


def action_statuses(visit: Visit) -> list[str]:
    """The action statuses of the protocols of the person's networks (in the protocols' order)."""
    policies = visit.state.policies.current
    found: list[str] = []
    for network_id in networks_of(visit):
        network = policies.network(network_id)
        for status in network.protocol.action_statuses if network is not None else ():
            if status not in found:
                found.append(status)
    return found


def status_label(visit: Visit, status: str) -> str:
    label = ACTION_STATUS_LABELS.get(status)
    return visit.gettext(label) if label else status


async def _actions_page(visit: Visit, *, status_code: int = 200, error: dict[str, Any] | None = None,
                        failed: str | None = None, referral: str | None = None, state: str | None = None) -> Response:
    query = visit.request.query_params
    referral = referral if referral is not None else query.get("referral", "").strip()[:64]
    state = state if state is not None else query.get("state", "due")
    state = state if state in ACTION_STATES else "due"
    if referral:
        reply = await visit.api.get(f"/v1/referrals/{referral}/actions", purpose=visit.purpose)
    else:
        reply = await visit.api.get("/v1/actions", purpose=visit.purpose, params={"state": state, "limit": 200})
    if not reply.ok:
        return web.problem_page(visit, reply)
    assert visit.person is not None
    saved = query.get("saved")
    if saved in SAVED and error is None:
        visit.messages.append(("ok", visit.gettext(SAVED[saved])))
    statuses = action_statuses(visit)
    return web.render(
        visit, "coordinator/actions.html", status_code=status_code, items=reply.body.get("items", []),
        referral=referral, state=state, states=[(k, visit.gettext(v)) for k, v in ACTION_STATES.items()],
        statuses=[(s, status_label(visit, s)) for s in statuses],
        status_labels={s: status_label(visit, s) for s in [*statuses, "overdue"]},
        agency=visit.person.agency_id, chair=visit.has("coordinator"), error=error, failed=failed)


@router.get(f"{PREFIX}/actions")
@page("coordinator", "caseworker", needs_purpose=True)
async def actions_list(visit: Visit) -> Response:
    return await _actions_page(visit)


@router.post(f"{PREFIX}/actions/{{action_id}}/status")
@page("coordinator", "caseworker", needs_purpose=True)
async def action_status(visit: Visit, action_id: str) -> Response:
    form = await visit.request.form()
    referral, state = text(form, "referral", 64), text(form, "state", 10)
    status = text(form, "status", 40)
    back = f"{PREFIX}/actions?saved=status" + (f"&referral={quote(referral, safe='')}" if referral
                                                else f"&state={quote(state or 'due', safe='')}")
    if not status:
        return await _actions_page(visit, status_code=422, referral=referral, state=state, failed=action_id,
                                   error=form_error(visit, N_("Choose a status."), status=""))
    body: dict[str, Any] = {"status": status}
    note = text(form, "note", 2000)
    if note:
        body["note"] = note
    reply = await visit.api.post(f"/v1/actions/{action_id}/status", body)
    if reply.ok:
        return web.redirect(visit, back)
    return await _actions_page(visit, status_code=refused_status(reply), referral=referral, state=state,
                               failed=action_id, error=refusal(visit, reply))


def _new_action(visit: Visit, referral_id: str, *, status_code: int = 200, error: dict[str, Any] | None = None,
                values: Mapping[str, str] | None = None) -> Response:
    query = visit.request.query_params
    held = dict(values or {})
    held.setdefault("meeting_id", query.get("meeting", "")[:40])
    held.setdefault("number", query.get("number", "")[:6])
    return web.render(visit, "coordinator/action_new.html", status_code=status_code, referral_id=referral_id,
                      members=members_of(visit, networks_of(visit)), error=error, values=held,
                      today=visit.state.clock().date().isoformat())


@router.get(f"{PREFIX}/referrals/{{referral_id}}/actions/new")
@page("coordinator", "caseworker", needs_purpose=True)
async def action_form(visit: Visit, referral_id: str) -> Response:
    return _new_action(visit, referral_id)


@router.post(f"{PREFIX}/referrals/{{referral_id}}/actions/new")
@page("coordinator", "caseworker", needs_purpose=True)
async def action_create(visit: Visit, referral_id: str) -> Response:
    form = await visit.request.form()
    values = {name: text(form, name, 2000) for name in ("description", "owner_agency", "due_on", "meeting_id",
                                                        "number")}
    missing = {name: "" for name in ("description", "owner_agency", "due_on") if not values[name]}
    if missing:
        return _new_action(visit, referral_id, status_code=422, values=values,
                           error=form_error(visit, N_("Fill in every field marked as needed."), **missing))
    try:
        date.fromisoformat(values["due_on"])
        number = int(values["number"]) if values["number"] else None
    except ValueError:
        return _new_action(visit, referral_id, status_code=422, values=values,
                           error=form_error(visit, N_("Give a date and an item number as numbers."), due_on=""))
    body: dict[str, Any] = {"description": values["description"], "owner_agency": values["owner_agency"],
                            "due_on": values["due_on"]}
    if values["meeting_id"] or number is not None:
        body.update(meeting_id=values["meeting_id"] or None, number=number)
    reply = await visit.api.post(f"/v1/referrals/{referral_id}/actions", body)
    if reply.ok:
        return web.redirect(visit, f"{PREFIX}/actions?saved=created&referral={quote(referral_id, safe='')}")
    return _new_action(visit, referral_id, status_code=refused_status(reply), values=values,
                       error=refusal(visit, reply))
