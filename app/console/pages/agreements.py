"""The agreements, for every signed-in person: which ones bind the agency, and what each one lets whom see.

No case data: the agreements in force (``visit.state.policies.current``), the agencies' names and
sectors, and ``app.policy.who`` for the "who can receive this?" form.

- ``/console/agreements``: the agreements the person's agency is party to.
- ``/console/agreements/{agreement_id}/versions/{version}/sign`` (POST): the person signs a proposed version
  for their agency, through the API (``POST /v1/agreements/{id}/versions/{n}/signatures``).
- ``/console/agreements/{agreement_id}``: one of them (in force, or a version awaiting signatures) for
  people — parties, purposes, who sees what (each
  permit: audience, purposes, view and its fields, legal basis, conditions, retention), denies, the
  emergency section, dates and content hash, its versions with their signatures (a sign form for a person who
  may sign, and what a proposed version changes) — and the who-can form (``?view=`` or ``?field=``, ``&purpose=``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from app.agencies.models import Agency
from app.agreements.signing import SIGNING_ROLES
from app.console import web
from app.console.router import page
from app.console.web import N_, PREFIX, Visit
from app.policy.build import NETWORK_CONDITION
from app.policy.diff import diff_agreements
from app.policy.model import Agreement, Audience, Permit
from app.policy.who import Recipient, who_can

router = APIRouter(include_in_schema=False)
EVERY_ROLE = ("referrer", "caseworker", "coordinator", "partner_reader", "statistics_reader", "auditor", "admin")
RELATION_LABELS: dict[str, str] = {
    "owner": N_("the agency that created the referral"), "referrer": N_("the referring agency"),
    "assigned": N_("an agency assigned to the case"), "coordinator": N_("the network's coordinator"),
}
CONDITION_LABELS: dict[str, str] = {
    "consent": N_("Consent"), "status": N_("Status"), "invited": N_("Invited to the case conference"),
    "risk_level": N_("Risk level"), "classification": N_("Who may read it"),
    "intervention_type": N_("Intervention type"),
}
STATE_LABELS: dict[str, str] = {
    "proposed": N_("proposed: awaiting signatures"), "in_force": N_("signed: in force"),
    "superseded": N_("superseded"),
}
CONDITION_VOCABULARY = {"consent": "consent_status", "status": "referral_status", "risk_level": "risk_level",
                        "classification": "note_classification", "intervention_type": "intervention_type"}


def _directory(visit: Visit) -> dict[str, dict[str, str]]:
    with visit.state.read_sessions() as session:
        rows = session.execute(select(Agency.id, Agency.name, Agency.sector)).all()
    return {row.id: {"name": row.name, "sector": row.sector} for row in rows}


async def agency_names(visit: Visit) -> dict[str, dict[str, str]]:
    """Every agency's name and sector (reference data, not case data), by id."""
    return await to_thread.run_sync(_directory, visit)


def _mine(visit: Visit) -> list[Agreement]:
    assert visit.person is not None
    return [a for a in visit.state.policies.current if visit.person.agency_id in a.party_set]


def _audience(audience: Audience, parties: tuple[str, ...], directory: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Who a rule names, and the parties it reaches (by agency or by sector; a relation reaches any of them)."""
    reached = [p for p in parties
               if (audience.agencies is None or p in audience.agencies)
               and (audience.sectors is None or directory.get(p, {}).get("sector") in audience.sectors)]
    return {
        "agencies": sorted(audience.agencies) if audience.agencies is not None else None,
        "sectors": sorted(audience.sectors) if audience.sectors is not None else None,
        "roles": sorted(audience.roles) if audience.roles is not None else None,
        "relations": sorted(audience.relations) if audience.relations is not None else None,
        "reached": reached,
    }


def _conditions(when: Any) -> list[tuple[str, list[str]]]:
    return [(key, sorted(values)) for key, values in when if key != NETWORK_CONDITION]


def _permit(permit: Permit, agreement: Agreement, directory: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "id": permit.id, "audience": _audience(permit.audience, agreement.parties, directory),
        "purposes": sorted(permit.purposes), "view": permit.view.name, "kind": permit.view.kind,
        "items": sorted(permit.view.items), "special": sorted(permit.view.special),
        "legal_basis": permit.legal_basis, "special_category_condition": permit.special_category_condition,
        "retention": str(permit.retention), "conditions": _conditions(permit.when),
        "emergency_window": permit.emergency_window.iso() if permit.emergency_window else None,
    }


def described(agreement: Agreement, directory: dict[str, dict[str, str]], today: Any) -> dict[str, Any]:
    """The agreement as the detail page shows it."""
    return {
        "id": agreement.id, "title": agreement.title, "version": agreement.version,
        "effective_from": agreement.effective_from, "review_by": agreement.review_by,
        "in_force": agreement.in_force(today), "controller_contact": agreement.controller_contact,
        "content_hash": agreement.content_hash, "networks": sorted(agreement.networks),
        "parties": list(agreement.parties), "purposes": list(agreement.purposes.items()),
        "views": [(name, view.kind, sorted(view.items), view.min_cell) for name, view in agreement.views.items()],
        "permits": [_permit(p, agreement, directory) for p in agreement.permits],
        "denies": [{"id": d.id, "audience": _audience(d.audience, agreement.parties, directory),
                    "data": d.view_label, "kind": d.kind, "items": sorted(d.items),
                    "purposes": sorted(d.purposes) if d.purposes is not None else None,
                    "conditions": _conditions(d.when)} for d in agreement.denies],
        "emergency": _permit(agreement.emergency, agreement, directory) if agreement.emergency else None,
    }


def _who(visit: Visit, agreement: Agreement, directory: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The who-can form's question and answer (``None`` answer: nothing asked yet)."""
    query = visit.request.query_params
    view, field, purpose = (query.get(k, "").strip()[:100] for k in ("view", "field", "purpose"))
    fields = sorted({item for v in agreement.views.values() if v.kind == "referral" for item in v.items})
    asked: dict[str, Any] = {"view": view, "field": field, "purpose": purpose, "fields": fields,
                             "views": list(agreement.views), "answer": None, "error": None}
    if not (view or field or purpose):
        return asked
    if purpose not in agreement.purposes or bool(view) == bool(field) or \
            (view and view not in agreement.views) or (field and field not in fields):
        asked["error"] = visit.gettext(N_("Choose a purpose, and either a view or a field of this agreement."))
        return asked
    views = [view] if view else [name for name, v in agreement.views.items() if v.kind == "referral"
                                 and field in v.items]
    today = visit.state.clock().date()
    found: dict[str, Recipient] = {}
    for name in views:
        for r in who_can(visit.state.policies.current, name, purpose, today):
            if r.agreement_id == agreement.id:
                found.setdefault(r.rule_id, r)
    asked["answer"] = [{
        "rule": r.rule_id, "granted_view": r.granted_view, "restricted_by": list(r.restricted_by),
        "conditions": [(k, list(v)) for k, v in r.conditions.items() if k != NETWORK_CONDITION],
        "audience": _audience(Audience(
            roles=frozenset(r.roles) if r.roles is not None else None,
            sectors=frozenset(r.sectors) if r.sectors is not None else None,
            agencies=frozenset(r.agencies) if r.agencies is not None else None,
            relations=frozenset(r.relations) if r.relations is not None else None), agreement.parties, directory),
    } for r in found.values()]
    return asked


@router.get(f"{PREFIX}/agreements")
@page(*EVERY_ROLE)
async def agreements(visit: Visit) -> Response:
    today = visit.state.clock().date()
    listed = [{"id": a.id, "title": a.title, "version": a.version, "effective_from": a.effective_from,
               "review_by": a.review_by, "in_force": a.in_force(today), "networks": sorted(a.networks),
               "parties": len(a.parties)} for a in _mine(visit)]
    assert visit.person is not None
    awaiting = [{"id": p.agreement_id, "version": p.version, "missing": list(p.missing)}
                for p in visit.state.policies.current.proposed_for(visit.person.agency_id)]
    return web.render(visit, "agreements/list.html", agreements=listed, awaiting=awaiting)


def _found(visit: Visit, agreement_id: str) -> Agreement | None:
    """The agreement in force, else the version loaded and awaiting signatures, if the agency is a party."""
    assert visit.person is not None
    policies = visit.state.policies
    for agreement in (policies.current.get(agreement_id), policies.loaded.get(agreement_id)):
        if agreement is not None and visit.person.agency_id in agreement.party_set:
            return agreement
    return None


def _may_sign(visit: Visit, version: dict[str, Any]) -> bool:
    """Whether the person may sign this version for their agency, which has not signed it yet."""
    person = visit.person
    assert person is not None
    if version.get("state") != "proposed" or person.agency_id not in version.get("parties", []):
        return False
    missing = version.get("missing", [])
    named = f"{person.agency_id}/{person.id}" if version.get("signatories") else person.agency_id
    return named in missing and not person.roles.isdisjoint(SIGNING_ROLES)


async def _versions(visit: Visit, agreement_id: str) -> list[dict[str, Any]]:
    """The agreement's versions with their signatures, as the API lists them to the person."""
    reply = await visit.api.get(f"/v1/agreements/{quote(agreement_id, safe='')}/versions")
    items = reply.body.get("items", []) if reply.ok and isinstance(reply.body, dict) else []
    return [{**v, "may_sign": _may_sign(visit, v)} for v in items if isinstance(v, dict)]


async def _diff(visit: Visit, agreement_id: str) -> dict[str, Any] | None:
    """What the proposed version newly grants and withholds against the one in force (None: nothing to compare)."""
    policies = visit.state.policies
    old, new = policies.current.get(agreement_id), policies.loaded.get(agreement_id)
    if old is None or new is None or old.content_hash == new.content_hash:
        return None
    return (await to_thread.run_sync(diff_agreements, old, new)).to_dict()


@router.get(f"{PREFIX}/agreements/{{agreement_id}}")
@page(*EVERY_ROLE)
async def agreement(visit: Visit, agreement_id: str) -> Response:
    return await _detail(visit, agreement_id)


async def _detail(visit: Visit, agreement_id: str, status_code: int = 200, sign_error: str | None = None) -> Response:
    found = _found(visit, agreement_id)
    if found is None:
        return web.render(visit, "problem.html", status_code=404, heading=visit.gettext(web.PROBLEM_TEXT[404][0]),
                          explanation=visit.gettext(N_("Your agency is party to no agreement with this id.")),
                          detail="")
    directory = await agency_names(visit)
    who = _who(visit, found, directory)
    return web.render(visit, "agreements/detail.html", status_code=422 if who["error"] else status_code,
                      agreement=described(found, directory, visit.state.clock().date()), agencies=directory,
                      who=who, relation_labels={k: visit.gettext(v) for k, v in RELATION_LABELS.items()},
                      condition_labels={k: visit.gettext(v) for k, v in CONDITION_LABELS.items()},
                      condition_vocabulary=CONDITION_VOCABULARY, versions=await _versions(visit, agreement_id),
                      policy_diff=await _diff(visit, agreement_id), sign_error=sign_error,
                      signed=visit.request.query_params.get("signed", "")[:12],
                      state_labels={k: visit.gettext(v) for k, v in STATE_LABELS.items()},
                      unsigned=visit.state.policies.current.get(agreement_id) is None)


@router.post(f"{PREFIX}/agreements/{{agreement_id}}/versions/{{version}}/sign")
@page(*EVERY_ROLE)
async def sign(visit: Visit, agreement_id: str, version: int) -> Response:
    form = await visit.request.form()
    content_hash = str(form.get("content_hash", ""))[:64]
    reply = await visit.api.post(f"/v1/agreements/{quote(agreement_id, safe='')}/versions/{version}/signatures",
                                 {"content_hash": content_hash})
    if reply.status in (403, 404, 409, 422):
        return await _detail(visit, agreement_id, status_code=reply.status,
                             sign_error=reply.problem() or visit.gettext(web.PROBLEM_TEXT[reply.status][1]))
    if not reply.ok:
        return web.problem_page(visit, reply)
    return web.redirect(visit, f"{PREFIX}/agreements/{quote(agreement_id, safe='')}?signed={version}#versions")
