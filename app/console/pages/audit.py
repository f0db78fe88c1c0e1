"""The auditor's (data-protection officer's) pages: the disclosure log, subject access, emergency access, Art. 30.

- ``/console/audit/log``: ``GET /v1/audit/entries`` with its filters, a page at a time (newest first,
  the API's cursor); above it a badge: the latest signed checkpoint (``GET /v1/audit/checkpoint``),
  its signature checked against ``GET /v1/audit/verifier-key``, the newest entry's inclusion proof
  and the consistency proof from the first entry up to it, each checked here with the public
  RFC 9162 verifiers (app.audit.merkle, app.audit.note). The log holds no case data: details are
  references, field names and reasons.
- ``/console/audit/subject-access``: a person's subject-access report (``GET /v1/subjects/{id}/disclosures``,
  read for the purpose ``subject_access``), every page of it, laid out to print.
- ``/console/audit/emergency``: break-the-glass grants to review (``GET /v1/audit/emergency-access``,
  ``POST …/{grant_id}/review``) and the flagged agencies (``GET /v1/audit/flagged-agencies``, ``POST …/clear``).
- ``/console/audit/processing``: the record of processing activities (GDPR Art. 30): app.console.pages.ropa.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from app.audit.events import EventType
from app.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from app.audit.note import Checkpoint, NoteError, verify_checkpoint
from app.console import web
from app.console.pages.agreements import agency_names
from app.console.router import page
from app.console.web import N_, PREFIX, Visit

router = APIRouter(include_in_schema=False)

LOG_LIMIT = 50
REPORT_LIMIT = 200
REPORT_MAX_PAGES = 25
SUBJECT_ACCESS = "subject_access"
SUBJECT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
TEXT_FILTERS = ("subject_id", "actor_agency", "recipient_agency", "purpose", "agreement_id", "rule_id")
EVENT_LABELS: dict[str, str] = {
    "disclosure": N_("Disclosure"), "access": N_("Own-record access"), "denial": N_("Refusal"),
    "create": N_("Created"), "change": N_("Changed"), "transition": N_("Status change"),
    "agreement_load": N_("Agreements loaded"), "key_event": N_("Key event"), "audit_query": N_("Log read"),
    "purge": N_("Purge"), "erasure": N_("Erasure"), "emergency_grant": N_("Emergency grant"),
    "emergency_read": N_("Emergency read"), "withdrawal_notice": N_("Withdrawal notice"),
    "aggregate_disclosure": N_("Aggregate disclosure"), "link": N_("Person linked"), "sign_in": N_("Sign-in"),
    "agreement_signed": N_("Agreement signed"), "agreement_activated": N_("Agreement in force"),
    "conduct_accepted": N_("Code of conduct accepted"),
    "training_recorded": N_("Training recorded"),
}
DECISION_LABELS: dict[str, str] = {"permit": N_("permitted"), "deny": N_("denied")}
FINDING_LABELS: dict[str, str] = {"justified": N_("justified"), "unjustified": N_("unjustified")}
LOG_ERRORS: dict[str, str] = {
    "since": N_("Enter the first day as a date (YYYY-MM-DD)."),
    "until": N_("Enter the last day as a date (YYYY-MM-DD), not before the first."),
}


def _body(reply: web.Reply) -> dict[str, Any]:
    return reply.body if isinstance(reply.body, dict) else {}


# The verification badge ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    """What the badge says: verified or not, why not, and the checkpoint it is about."""

    ok: bool
    reason: str | None
    tree_size: int | None = None
    signed_at: datetime | None = None
    age_minutes: int | None = None
    signed_by: tuple[str, ...] = ()


def _signed_at(checkpoint: Checkpoint) -> datetime | None:
    for line in checkpoint.extensions:
        if line.startswith("time "):
            try:
                return datetime.strptime(line[5:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                return None
    return None


async def _leaf_hash(visit: Visit, seq: int) -> bytes | None:
    """The hash of entry ``seq``'s leaf bytes, computed here (not the hash the service states)."""
    reply = await visit.api.get(f"/v1/audit/entries/{seq}/leaf")
    body = _body(reply)
    if not reply.ok or not isinstance(body.get("leaf"), str):
        return None
    try:
        return leaf_hash(base64.b64decode(body["leaf"], validate=True))
    except (binascii.Error, ValueError):
        return None


def _hashes(reply: web.Reply) -> list[bytes] | None:
    found = _body(reply).get("hashes")
    if not reply.ok or not isinstance(found, list):
        return None
    try:
        return [base64.b64decode(str(h), validate=True) for h in found]
    except (binascii.Error, ValueError):
        return None


async def verify_log(visit: Visit) -> Verification:
    """Check the latest checkpoint's signature, then the tree up to it with an inclusion and a consistency proof."""
    note = await visit.api.get("/v1/audit/checkpoint")
    keys = await visit.api.get("/v1/audit/verifier-key")
    if not note.ok or not keys.ok or not isinstance(note.body, str) or not isinstance(keys.body, str):
        return Verification(False, visit.gettext(N_("The checkpoint or the verifier keys could not be read.")))
    trusted = [line.strip() for line in keys.body.splitlines() if line.strip()]
    try:
        checkpoint = verify_checkpoint(note.body, trusted)
    except NoteError as exc:
        return Verification(False, visit.gettext(N_("The checkpoint's signature does not verify: %(why)s"))
                            % {"why": exc})
    size, root = checkpoint.tree_size, checkpoint.root_hash
    signed = _signed_at(checkpoint)
    age = None if signed is None else max(0, int((visit.state.clock() - signed).total_seconds() // 60))

    def failed(reason: str) -> Verification:
        return Verification(False, visit.gettext(reason), size, signed, age, checkpoint.verified_by)

    if size > 0:
        last = await _leaf_hash(visit, size - 1)
        proof = _hashes(await visit.api.get("/v1/audit/proofs/inclusion",
                                            params={"leaf_index": size - 1, "tree_size": size}))
        if last is None or proof is None:
            return failed(N_("The newest entry or its inclusion proof could not be read."))
        if not verify_inclusion(size - 1, size, last, proof, root):
            return failed(N_("The newest entry is not in the signed tree: the log was altered."))
        first = await _leaf_hash(visit, 0)
        if first is None:
            return failed(N_("The first entry could not be read."))
        if size == 1:
            consistent = first == root
        else:
            path = _hashes(await visit.api.get("/v1/audit/proofs/consistency",
                                               params={"first": 1, "second": size}))
            if path is None:
                return failed(N_("The consistency proof could not be read."))
            consistent = verify_consistency(1, size, first, root, path)
        if not consistent:
            return failed(N_("The signed tree does not extend the log's first entry: the log was altered."))
    return Verification(True, None, size, signed, age, checkpoint.verified_by)


# The disclosure log ----------------------------------------------------------------------------


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _stamp(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


@router.get(f"{PREFIX}/audit/log")
@page("auditor")
async def log_page(visit: Visit) -> Response:
    query = visit.request.query_params
    chosen = {name: query.get(name, "").strip()[:100] for name in (*TEXT_FILTERS, "decision", "event_type",
                                                                    "since", "until")}
    cursor = query.get("cursor") or None
    params: dict[str, Any] = {name: chosen[name] for name in TEXT_FILTERS}
    errors: dict[str, str] = {}
    if chosen["decision"] in ("permit", "deny"):
        params["decision"] = chosen["decision"]
    if chosen["event_type"] in EVENT_LABELS:
        params["event_type"] = chosen["event_type"]
    since = _day(chosen["since"]) if chosen["since"] else None
    until = _day(chosen["until"]) if chosen["until"] else None
    if chosen["since"] and since is None:
        errors["since"] = visit.gettext(LOG_ERRORS["since"])
    if chosen["until"] and (until is None or (since is not None and until < since)):
        errors["until"] = visit.gettext(LOG_ERRORS["until"])
    if since is not None:
        params["since"] = _stamp(since)
    if until is not None:
        params["until"] = _stamp(until + timedelta(days=1))  # the last day counts in full
    context: dict[str, Any] = {
        "chosen": chosen, "errors": errors, "entries": [], "next_cursor": None, "verification": None,
        "event_labels": {k: visit.gettext(v) for k, v in EVENT_LABELS.items()},
        "decision_labels": {k: visit.gettext(v) for k, v in DECISION_LABELS.items()},
        "event_types": [e.value for e in EventType], "next_link": None,
    }
    if errors:
        context["verification"] = await verify_log(visit)
        return web.render(visit, "audit/log.html", status_code=422, **context)
    reply = await visit.api.get("/v1/audit/entries", params={**params, "order": "desc", "cursor": cursor,
                                                             "limit": LOG_LIMIT})
    if reply.status in (400, 422):
        visit.messages.append(("error", visit.gettext(N_("The log could not be searched with these filters."))
                               + (f" {reply.problem()}" if reply.problem() else "")))
        context["verification"] = await verify_log(visit)
        return web.render(visit, "audit/log.html", status_code=422, **context)
    if not reply.ok:
        return web.problem_page(visit, reply)
    body = _body(reply)
    next_cursor = body.get("next_cursor")
    if next_cursor:
        kept = {k: v for k, v in chosen.items() if v}
        context["next_link"] = f"{PREFIX}/audit/log?" + urlencode({**kept, "cursor": next_cursor})
    context.update(entries=[e for e in body.get("items", []) if isinstance(e, dict)], next_cursor=next_cursor,
                   verification=await verify_log(visit))
    return web.render(visit, "audit/log.html", **context)


# Subject access --------------------------------------------------------------------------------


def _subject_form(visit: Visit, *, status_code: int = 200, subject_id: str = "", error: str | None = None) -> Response:
    return web.render(visit, "audit/subject_access.html", status_code=status_code, subject_id=subject_id,
                      error=error, report=None, wrong_purpose=visit.purpose != SUBJECT_ACCESS,
                      purpose_link=f"{PREFIX}/purpose?next={quote(f'{PREFIX}/audit/subject-access', safe='')}")


@router.get(f"{PREFIX}/audit/subject-access")
@page("auditor", needs_purpose=True)
async def subject_access_form(visit: Visit) -> Response:
    return _subject_form(visit)


@router.post(f"{PREFIX}/audit/subject-access")
@page("auditor", needs_purpose=True)
async def subject_access_report(visit: Visit) -> Response:
    form = await visit.request.form()
    subject_id = str(form.get("subject_id", "")).strip()
    if not SUBJECT_ID.fullmatch(subject_id):
        return _subject_form(visit, status_code=422, subject_id=subject_id[:80],
                             error=visit.gettext(N_("Enter the person's id as the service gives it (sub_…).")))
    if visit.purpose != SUBJECT_ACCESS:
        return _subject_form(visit, status_code=422, subject_id=subject_id, error=visit.gettext(
            N_("A subject-access report is read for the purpose “subject_access”. Change your purpose first.")))
    recipients: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    complete = False
    for _ in range(REPORT_MAX_PAGES):
        reply = await visit.api.get(f"/v1/subjects/{quote(subject_id, safe='')}/disclosures",
                                    purpose=visit.purpose, params={"cursor": cursor, "limit": REPORT_LIMIT})
        if reply.status in (400, 403, 404, 422):
            return _subject_form(visit, status_code=reply.status, subject_id=subject_id,
                                 error=reply.problem() or visit.gettext(web.PROBLEM_TEXT.get(
                                     reply.status, web.UNAVAILABLE)[1]))
        if not reply.ok:
            return web.problem_page(visit, reply)
        body = _body(reply)
        if cursor is None:
            recipients = [r for r in body.get("recipients", []) if isinstance(r, dict)]
        items += [i for i in body.get("items", []) if isinstance(i, dict)]
        cursor = body.get("next_cursor") or None
        if cursor is None:
            complete = True
            break
    names = await agency_names(visit)
    return web.render(visit, "audit/subject_access.html", subject_id=subject_id, error=None,
                      report={"recipients": recipients, "items": items, "complete": complete},
                      agencies=names, wrong_purpose=False, purpose_link="",
                      printed_at=visit.state.clock(),
                      event_labels={k: visit.gettext(v) for k, v in EVENT_LABELS.items()})


# Emergency access ------------------------------------------------------------------------------

EMERGENCY_SAVED: dict[str, str] = {
    "justified": N_("Reviewed: the grant was found justified."),
    "unjustified": N_("Reviewed: the grant was found unjustified, revoked, and its agency flagged."),
    "cleared": N_("The agency's flag was cleared."),
}


async def _emergency(visit: Visit, *, status_code: int = 200, errors: dict[str, str] | None = None,
                     values: dict[str, str] | None = None) -> Response:
    show = visit.request.query_params.get("show", "open")
    grants = await visit.api.get("/v1/audit/emergency-access",
                                 params={"reviewed": None if show == "all" else "false", "limit": 200})
    if not grants.ok:
        return web.problem_page(visit, grants)
    flags = await visit.api.get("/v1/audit/flagged-agencies", params={"active": "true", "limit": 200})
    if not flags.ok:
        return web.problem_page(visit, flags)
    saved = visit.request.query_params.get("saved")
    if saved in EMERGENCY_SAVED and not errors:
        visit.messages.append(("ok", visit.gettext(EMERGENCY_SAVED[saved])))
    return web.render(visit, "audit/emergency.html", status_code=status_code, show=show,
                      grants=[g for g in _body(grants).get("items", []) if isinstance(g, dict)],
                      flags=[f for f in _body(flags).get("items", []) if isinstance(f, dict)],
                      agencies=await agency_names(visit), errors=errors or {}, values=values or {},
                      finding_labels={k: visit.gettext(v) for k, v in FINDING_LABELS.items()})


@router.get(f"{PREFIX}/audit/emergency")
@page("auditor")
async def emergency(visit: Visit) -> Response:
    return await _emergency(visit)


@router.post(f"{PREFIX}/audit/emergency/{{grant_id}}/review")
@page("auditor")
async def review_grant(visit: Visit, grant_id: str) -> Response:
    form = await visit.request.form()
    finding = str(form.get("finding", ""))
    note = str(form.get("note", "")).strip()
    values = {"grant": grant_id, "finding": finding, "note": note[:2000]}
    if finding not in FINDING_LABELS:
        return await _emergency(visit, status_code=422, values=values, errors={
            grant_id: visit.gettext(N_("Choose whether the emergency access was justified."))})
    if len(note) > 2000:
        return await _emergency(visit, status_code=422, values=values, errors={
            grant_id: visit.gettext(N_("The note is too long (at most 2000 characters)."))})
    body: dict[str, Any] = {"finding": finding}
    if note:
        body["note"] = note
    reply = await visit.api.post(f"/v1/audit/emergency-access/{quote(grant_id, safe='')}/review", body)
    if reply.status in (403, 404, 409, 422):
        return await _emergency(visit, status_code=reply.status, values=values, errors={
            grant_id: reply.problem() or visit.gettext(web.PROBLEM_TEXT[reply.status][1])})
    if not reply.ok:
        return web.problem_page(visit, reply)
    return web.redirect(visit, f"{PREFIX}/audit/emergency?saved={finding}")


@router.post(f"{PREFIX}/audit/flags/{{flag_id}}/clear")
@page("auditor")
async def clear_flag(visit: Visit, flag_id: str) -> Response:
    reply = await visit.api.post(f"/v1/audit/flagged-agencies/{quote(flag_id, safe='')}/clear")
    if reply.status in (403, 404, 409):
        return await _emergency(visit, status_code=reply.status, errors={
            flag_id: reply.problem() or visit.gettext(web.PROBLEM_TEXT[reply.status][1])})
    if not reply.ok:
        return web.problem_page(visit, reply)
    return web.redirect(visit, f"{PREFIX}/audit/emergency?saved=cleared")
