"""The referrer's pages: a new referral (a form built from the published schema) and the closed loop.

- ``/console/referrals/new``: the form of ``referral/v1`` as the API publishes it to the person's agency
  (``GET /v1/schemas/referral/v1``: its networks, codes, lengths and patterns), checked here with the
  same rules and messages the browser shows, then ``POST /v1/referrals`` with the form's
  ``Idempotency-Key`` (made when the form was drawn, so a second click makes no second referral).
- ``/console/referrals/mine``: the agency's referrals (``GET /v1/referrals``, those it referred), their
  status and last change, and the recent status changes (``GET /v1/events``).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.console import forms, web
from app.console.router import page
from app.console.web import N_, PREFIX, Visit

router = APIRouter(include_in_schema=False)

SCHEMA_NAME, SCHEMA_VERSION = "referral", "v1"
"""The version the form is built from: the base one (v2's sections are disclosed by no agreement yet)."""
SKIP = frozenset({"referring_person", "consent.recorded_at"})
"""Filled by the API: the person in the token, and the time of posting."""
KEY_MAX = 200

LABELS: dict[str, str] = {
    "network": N_("Network"),
    "subject": N_("The person"),
    "subject.given_name": N_("Given name"),
    "subject.family_name": N_("Family name"),
    "subject.date_of_birth": N_("Date of birth"),
    "subject.gender": N_("Gender"),
    "subject.phone": N_("Phone"),
    "subject.email": N_("E-mail"),
    "subject.address": N_("Address"),
    "subject.district": N_("District"),
    "subject.identifiers": N_("Identifier"),
    "subject.identifiers.0.system": N_("Issued by"),
    "subject.identifiers.0.value": N_("Identifier value"),
    "subject.ethnicity": N_("Ethnicity"),
    "subject.religion": N_("Religion"),
    "subject.language": N_("Language"),
    "concerns": N_("Concerns"),
    "vulnerability_factors": N_("Vulnerability factors"),
    "protective_factors": N_("Protective factors"),
    "risk_level": N_("Risk level"),
    "urgency": N_("Urgency"),
    "consent": N_("Consent"),
    "consent.status": N_("Consent status"),
    "consent.legal_basis": N_("Legal basis"),
    "consent.recorded_by": N_("Consent recorded by"),
    "requested_services": N_("Requested services"),
    "intervention_type": N_("Intervention type"),
    "narrative": N_("Narrative"),
    "do_not_contact": N_("Do not contact the person directly"),
}

HELPS: dict[str, str] = {
    "network": N_("The prevention network the referral goes to."),
    "subject": N_("Identifying and special-category fields are encrypted at rest."),
    "subject.date_of_birth": N_("Year-month-day, e.g. 2009-03-14; not after today."),
    "subject.district": N_("Stored in clear for sharing and statistics."),
    "subject.identifiers": N_("A later referral with the same identifier is linked to the same person."),
    "subject.identifiers.0.system": N_("Who issued it, in small letters, e.g. national_id."),
    "subject.ethnicity": N_("Special category (GDPR Art. 9): only if the referral needs it."),
    "subject.religion": N_("Special category (GDPR Art. 9): only if the referral needs it."),
    "subject.language": N_("A language tag, e.g. ar-LB."),
    "concerns": N_("Choose one or more."),
    "vulnerability_factors": N_("Choose any that apply."),
    "protective_factors": N_("Choose any that apply."),
    "requested_services": N_("Choose any that apply."),
    "consent.legal_basis": N_("Required when consent is not given: the basis for processing without it."),
    "narrative": N_("What happened, in your words. Only agencies whose agreement grants it will read it."),
}

DONE = {"referral-sent": N_("The referral was sent."), "note-added": N_("The note was added.")}
"""The confirmation a page redirected to with ``?done=<key>`` shows (the referral page: app/console/pages/case.py)."""


async def _form(visit: Visit) -> forms.Form | web.Reply:
    """The form of the schema as published to this person (through the API), or the API's refusal."""
    listed = await visit.api.get("/v1/schemas")
    if not listed.ok:
        return listed
    items = listed.body.get("items", []) if isinstance(listed.body, dict) else []
    if not any(isinstance(i, dict) and i.get("id") == f"{SCHEMA_NAME}/{SCHEMA_VERSION}" for i in items):
        return web.Reply(404, {"detail": f"{SCHEMA_NAME}/{SCHEMA_VERSION}"}, {})
    reply = await visit.api.get(f"/v1/schemas/{SCHEMA_NAME}/{SCHEMA_VERSION}")
    if not reply.ok or not isinstance(reply.body, dict):
        return reply
    assert visit.person is not None
    networks = list(visit.state.policies.current.networks_of(visit.person.agency_id))
    defaults = {"network": networks[0]} if len(networks) == 1 else {}
    form = forms.build(visit, reply.body, labels=LABELS, helps=HELPS, skip=SKIP,
                       choices={"network": networks}, defaults=defaults)
    network = form.field("network")
    if network is not None and len(network.options) > 1:
        network.required = True  # the API's rule for an agency in several networks (x-server-side)
    return form


def _key(value: Any) -> str:
    if isinstance(value, str) and 0 < len(value) <= KEY_MAX and value.isprintable() and value.strip():
        return value
    return secrets.token_urlsafe(24)


def _show(visit: Visit, form: forms.Form, key: str, status_code: int = 200) -> Response:
    return web.render(visit, "referrer/new.html", status_code=status_code, form=form, key=key)


@router.get(f"{PREFIX}/referrals/new")
@page("referrer", needs_purpose=True)
async def new_referral_form(visit: Visit) -> Response:
    form = await _form(visit)
    if isinstance(form, web.Reply):
        return web.problem_page(visit, form)
    return _show(visit, form, secrets.token_urlsafe(24))


@router.post(f"{PREFIX}/referrals/new")
@page("referrer", needs_purpose=True)
async def new_referral(visit: Visit) -> Response:
    submitted = await visit.request.form()
    key = _key(submitted.get("idempotency_key"))
    form = await _form(visit)
    if isinstance(form, web.Reply):
        return web.problem_page(visit, form)
    if not form.read(visit, submitted):
        return _show(visit, form, key, status_code=422)
    reply = await visit.api.post("/v1/referrals", form.body(), purpose=visit.purpose,
                                 headers={"Idempotency-Key": key})
    created = reply.body if isinstance(reply.body, dict) else {}
    if reply.ok and isinstance(created.get("id"), str):
        return web.redirect(visit, f"{PREFIX}/referrals/{created['id']}?done=referral-sent")
    status, next_key = form.refused(visit, reply, key)
    return _show(visit, form, next_key, status_code=status)


# The closed loop --------------------------------------------------------------------------------

FEED_PAGES = 5
FEED_LIMIT = 200
RECENT = 20


async def _changes(visit: Visit, referral_ids: set[str]) -> list[dict[str, Any]]:
    """The latest status changes of these referrals from the change feed (oldest first there), newest first."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(FEED_PAGES):
        reply = await visit.api.get("/v1/events", purpose=visit.purpose,
                                    params={"limit": FEED_LIMIT, "after": after})
        if not reply.ok or not isinstance(reply.body, dict):
            break
        found.extend(i for i in reply.body.get("items", []) if isinstance(i, dict)
                     and i.get("kind", "status") == "status" and i.get("referral_id") in referral_ids)
        after = reply.body.get("next_cursor")
        if not after:
            break
    return list(reversed(found))[:RECENT]


@router.get(f"{PREFIX}/referrals/mine")
@page("referrer", needs_purpose=True)
async def my_referrals(visit: Visit) -> Response:
    assert visit.person is not None
    cursor = visit.request.query_params.get("cursor") or None
    reply = await visit.api.get("/v1/referrals", purpose=visit.purpose, params={"cursor": cursor, "limit": 100})
    if not reply.ok:
        return web.problem_page(visit, reply)
    body = reply.body if isinstance(reply.body, dict) else {}
    agency = visit.person.agency_id
    mine = [r for r in body.get("items", []) if isinstance(r, dict) and r.get("referring_agency") == agency]
    changes = await _changes(visit, {str(r.get("id")) for r in mine})
    return web.render(visit, "referrer/mine.html", referrals=mine, changes=changes,
                      next_cursor=body.get("next_cursor"))
