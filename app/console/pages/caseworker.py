"""The caseworker's pages: the cases assigned to the agency, and a note on a referral.

- ``/console/cases``: ``GET /v1/referrals`` for the chosen purpose (only what the agreements grant, each
  read logged), kept to those assigned to the person's agency. A view that names ``assigned_agencies``
  shows it; a view that does not (a partner's summary) was granted through the assignment itself,
  since every owner's, referrer's and coordinator's view names it.
- ``/console/referrals/{id}/notes/new``: a note (``note/v1`` as published: classification from the
  ``note_classification`` vocabulary, the text) posted with ``POST /v1/referrals/{id}/notes`` and the
  form's ``Idempotency-Key``.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response

from app.console import forms, web
from app.console.router import page
from app.console.web import N_, PREFIX, Visit
from app.vocabularies.catalog import vocabularies

router = APIRouter(include_in_schema=False)

CASE_LIMIT = 100
NOTE_SCHEMA = "/v1/schemas/note/v1"
NOTE_SKIP = frozenset({"supersedes", "author_person"})
NOTE_LABELS: dict[str, str] = {"classification": N_("Who may read it"), "text": N_("Note")}
NOTE_HELPS: dict[str, str] = {
    "classification": N_("Each agency reads a note only if its agreement grants the note's classification."),
    "text": N_("Notes cannot be changed later; a correction is a new note."),
}
KEY_MAX = 200


def _assigned_to(referral: dict[str, Any], agency: str) -> bool:
    assigned = referral.get("assigned_agencies")
    if isinstance(assigned, list):
        return agency in assigned
    # Only the assignment grants a view without the field (every owner, referrer and coordinator view has it).
    return "assigned_agencies" not in referral and "referring_agency" not in referral


@router.get(f"{PREFIX}/cases")
@page("caseworker", needs_purpose=True)
async def cases(visit: Visit) -> Response:
    assert visit.person is not None
    status = visit.request.query_params.get("status") or None
    cursor = visit.request.query_params.get("cursor") or None
    reply = await visit.api.get("/v1/referrals", purpose=visit.purpose,
                                params={"status": status, "cursor": cursor, "limit": CASE_LIMIT})
    if not reply.ok:
        return web.problem_page(visit, reply)
    body = reply.body if isinstance(reply.body, dict) else {}
    agency = visit.person.agency_id
    found = [r for r in body.get("items", []) if isinstance(r, dict) and _assigned_to(r, agency)]
    found_statuses = vocabularies().get("referral_status")
    statuses = [c.code for c in found_statuses.codes] if found_statuses is not None else []
    return web.render(visit, "caseworker/cases.html", cases=found, next_cursor=body.get("next_cursor"),
                      status=status, statuses=statuses)


def _key(value: Any) -> str:
    if isinstance(value, str) and 0 < len(value) <= KEY_MAX and value.isprintable() and value.strip():
        return value
    return secrets.token_urlsafe(24)


async def _note_form(visit: Visit) -> forms.Form | web.Reply:
    reply = await visit.api.get(NOTE_SCHEMA)
    if not reply.ok or not isinstance(reply.body, dict):
        return reply
    return forms.build(visit, reply.body, labels=NOTE_LABELS, helps=NOTE_HELPS, skip=NOTE_SKIP,
                       defaults={"classification": "shared"})


async def _referral(visit: Visit, referral_id: str) -> web.Reply:
    """The referral as the person may see it: the note page names what the note is about, nothing more."""
    return await visit.api.get(f"/v1/referrals/{quote(referral_id, safe='')}", purpose=visit.purpose)


def _show(visit: Visit, referral: dict[str, Any], form: forms.Form, key: str, status_code: int = 200) -> Response:
    return web.render(visit, "caseworker/note.html", status_code=status_code, referral=referral, form=form, key=key)


@router.get(f"{PREFIX}/referrals/{{referral_id}}/notes/new")
@page("caseworker", "referrer", needs_purpose=True)
async def new_note_form(visit: Visit, referral_id: str) -> Response:
    found = await _referral(visit, referral_id)
    if not found.ok:
        return web.problem_page(visit, found)
    form = await _note_form(visit)
    if isinstance(form, web.Reply):
        return web.problem_page(visit, form)
    return _show(visit, _heading(found.body, referral_id), form, secrets.token_urlsafe(24))


def _heading(body: Any, referral_id: str) -> dict[str, Any]:
    """Only the id and the status, if granted: the note form shows nothing else of the case."""
    given = body if isinstance(body, dict) else {}
    return {"id": str(given.get("id", referral_id)), "status": given.get("status")}


@router.post(f"{PREFIX}/referrals/{{referral_id}}/notes/new")
@page("caseworker", "referrer", needs_purpose=True)
async def new_note(visit: Visit, referral_id: str) -> Response:
    submitted = await visit.request.form()
    key = _key(submitted.get("idempotency_key"))
    found = await _referral(visit, referral_id)
    if not found.ok:
        return web.problem_page(visit, found)
    referral = _heading(found.body, referral_id)
    form = await _note_form(visit)
    if isinstance(form, web.Reply):
        return web.problem_page(visit, form)
    if not form.read(visit, submitted):
        return _show(visit, referral, form, key, status_code=422)
    reply = await visit.api.post(f"/v1/referrals/{quote(referral['id'], safe='')}/notes", form.body(),
                                 purpose=visit.purpose, headers={"Idempotency-Key": key})
    if reply.ok:
        return web.redirect(visit, f"{PREFIX}/referrals/{referral['id']}?done=note-added")
    status, next_key = form.refused(visit, reply, key)
    return _show(visit, referral, form, next_key, status_code=status)
