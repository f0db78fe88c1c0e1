"""Referral rules: create under the standard format, read through the access check, move through the lifecycle."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app import access
from app.agencies import repository as agencies
from app.auth.principal import Principal
from app.crypto.envelope import BlindIndex, Envelope
from app.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from app.pagination import decode_cursor, encode_cursor
from app.policy.policy_set import PolicySet
from app.referrals import repository, snapshot
from app.referrals.lifecycle import Actor, Status, actors_for, allowed_targets, targets_for
from app.referrals.models import Assignment, Referral, ReferralConcern, StatusChange
from app.referrals.render import render_referral
from app.referrals.schemas import (
    CODED_FIELDS,
    SCHEMA_ID,
    ConsentUpdate,
    ReferralIn,
    TransitionIn,
    referral_field_paths,
)
from app.referrals.snapshot import ReferralSnapshot
from app.retention import dates as retention_dates
from app.retention import tombstones
from app.subjects import service as subjects
from app.subjects.models import Subject
from app.vocabularies import mappings
from app.vocabularies.catalog import vocabularies

NARRATIVE_CONTEXT = "referral.narrative"
ALL_FIELDS = referral_field_paths()


@dataclass(frozen=True, slots=True)
class Crypto:
    envelope: Envelope
    blind: BlindIndex


def new_referral_id() -> str:
    return "ref_" + secrets.token_urlsafe(12)


def etag(referral: Referral | ReferralSnapshot) -> str:
    return f'"{referral.id}.v{referral.version}"'


# -- codes -------------------------------------------------------------------------------


def standardise_codes(
    session: Session, principal: Principal, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Translate the agency's codes, check every code; returns (body, original codes)."""
    code_system = body.get("code_system")
    tables = mappings.resolve(session, code_system, principal.agency_id) if code_system else None
    catalog = vocabularies()
    originals: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for path, vocabulary_name in CODED_FIELDS.items():
        parent = body
        for part in path[:-1]:
            parent = parent.get(part) or {}
        leaf = path[-1]
        value = parent.get(leaf)
        if value is None:
            continue
        vocabulary = catalog[vocabulary_name]
        values = value if isinstance(value, list) else [value]
        standard = []
        for index, code in enumerate(values):
            mapped, translated = mappings.translate(tables, vocabulary_name, code)
            where = "$." + ".".join(path) + (f"[{index}]" if isinstance(value, list) else "")
            if translated:
                originals[where.removeprefix("$.")] = code
            if not vocabulary.has(mapped):
                errors.append({
                    "path": where,
                    "message": f"{code!r} is not a {vocabulary_name} code",
                    "type": "unknown_code",
                    "valid_codes": sorted(vocabulary.codes_set),
                })
            standard.append(mapped)
        parent[leaf] = standard if isinstance(value, list) else standard[0]
    if errors:
        raise InvalidInput(f"{errors[0]['path']}: {errors[0]['message']}", errors=errors)
    return body, originals


def _check_consent(data: ReferralIn) -> None:
    if data.consent.status != "given" and not data.consent.legal_basis:
        raise InvalidInput(
            "Without consent, a legal basis is required.",
            errors=[{
                "path": "$.consent.legal_basis",
                "message": "required when consent.status is not 'given'",
                "type": "missing",
                "valid_codes": sorted(vocabularies()["legal_basis"].codes_set),
            }],
        )


# -- create ------------------------------------------------------------------------------


def create(
    session: Session, crypto: Crypto, principal: Principal, raw: dict[str, Any], now: datetime,
    *, retention: retention_dates.RetentionRules | None = None,
) -> Referral:
    access.refuse_admin(principal)
    if "referrer" not in principal.roles:
        raise Forbidden("Posting a referral needs the referrer role.")
    body, originals = standardise_codes(session, principal, raw)
    try:
        data = ReferralIn.model_validate(body)
    except ValidationError as exc:  # a mapped code can still break a constraint
        from app.errors import validation_errors

        raise InvalidInput("The referral is invalid.", errors=validation_errors(exc.errors())) from None
    _check_consent(data)
    subject = subjects.create_or_link(session, crypto.envelope, crypto.blind, data.subject, now)
    referral = Referral(
        id=new_referral_id(),
        schema_id=SCHEMA_ID,
        subject_id=subject.id,
        referring_agency=principal.agency_id,
        referring_client=principal.client_id,
        referring_person=data.referring_person or principal.act,
        concerns=list(dict.fromkeys(data.concerns)),
        vulnerability_factors=list(dict.fromkeys(data.vulnerability_factors)),
        protective_factors=list(dict.fromkeys(data.protective_factors)),
        risk_level=data.risk_level,
        urgency=data.urgency,
        consent={
            "status": data.consent.status,
            "legal_basis": data.consent.legal_basis or ("consent" if data.consent.status == "given" else None),
            "recorded_at": (data.consent.recorded_at or now).astimezone(UTC).isoformat(),
            "recorded_by": data.consent.recorded_by or principal.act,
        },
        consent_status=data.consent.status,
        requested_services=list(dict.fromkeys(data.requested_services)),
        intervention_type=data.intervention_type,
        do_not_contact=data.do_not_contact,
        code_system=data.code_system,
        original_codes=originals,
        status=Status.submitted.value,
        version=1,
        created_at=now,
        updated_at=now,
    )
    if data.narrative is not None:
        key = subjects.data_key(crypto.envelope, subject)
        referral.narrative = key.seal(data.narrative.encode(), f"{NARRATIVE_CONTEXT}:{referral.id}")
    session.add(referral)
    session.flush()
    for concern in referral.concerns:
        session.add(ReferralConcern(referral_id=referral.id, concern=concern))
    session.add(StatusChange(
        referral_id=referral.id, from_status=None, to_status=Status.submitted.value, agencies=[],
        by_agency=principal.agency_id, by_client=principal.client_id, by_person=principal.act, at=now,
    ))
    session.flush()
    session.refresh(referral)
    if retention is not None:
        retention_dates.apply(session, retention, referral, now)
    return referral


# -- read --------------------------------------------------------------------------------


def load(session: Session, referral_id: str, *, for_update: bool = False) -> Referral:
    # A purged or erased referral is gone for good (410), even while its rows await deletion.
    gone = tombstones.find(session, referral_id)
    if gone is not None:
        past = tombstones.PAST[gone.reason]
        raise Gone(f"This referral was {past} on {gone.at.date().isoformat()}.", slug=f"referral-{past}")
    referral = repository.get(session, referral_id, for_update=for_update)
    if referral is None:
        raise NotFound("No such referral.")
    return referral


def read(
    session: Session, crypto: Crypto, principal: Principal, referral_id: str, purpose: str,
    policies: PolicySet, view: str | None, today: date,
) -> tuple[ReferralSnapshot, access.Grant, dict[str, Any]]:
    referral = snapshot.load(session, referral_id)
    grant = access.referral_grant(policies, principal, referral, purpose, view, today)
    return referral, grant, render_referral(referral, referral.subject, crypto.envelope, grant.fields)


def read_in_full(session: Session, crypto: Crypto, referral_id: str) -> tuple[ReferralSnapshot, dict[str, Any]]:
    """Every field, no decision: only for bench/load.py's baseline (see app.config.bench_bare_reads)."""
    referral = snapshot.load(session, referral_id)
    return referral, render_referral(referral, referral.subject, crypto.envelope, ALL_FIELDS)


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position["u"]), str(position["i"])
    except (KeyError, ValueError, TypeError):
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor") from None


SCAN_BATCH = 200


def list_page(
    session: Session,
    crypto: Crypto,
    principal: Principal,
    purpose: str,
    f: repository.ReferralFilter,
    cursor: str | None,
    limit: int,
    policies: PolicySet,
    today: date,
) -> tuple[list[tuple[ReferralSnapshot, access.Grant, dict[str, Any]]], str | None]:
    """One page of the referrals an agreement grants, each projected to its own view."""
    scope = access.scope(policies, principal, purpose, "referral", today)
    if not scope.relation_free and not scope.relations:
        return [], None
    agencies = None
    assigned_to = None
    if not scope.relation_free:
        agencies = (principal.agency_id,) if scope.relations & {"owner", "referrer"} else ()
        assigned_to = principal.agency_id if "assigned" in scope.relations else None
    after = _after(cursor)
    # Records no grant's conditions admit are not even loaded (only attributes SQL can see).
    prefilter = scope.conditions if scope.conditions and all(
        key in repository.CONDITION_ATTRIBUTES for when in scope.conditions for key, _ in when
    ) else None
    granted: list[tuple[ReferralSnapshot, access.Grant]] = []
    exhausted = False
    while len(granted) <= limit and not exhausted:
        query = repository.ReferralFilter(
            statuses=f.statuses, risk_levels=f.risk_levels, concerns=f.concerns,
            updated_since=f.updated_since, agencies=agencies, assigned_to=assigned_to, after=after,
            any_of=prefilter,
        )
        # The first batch is the page itself (and one to tell if there is a next); a caller
        # whose agreements deny many of them scans on in larger batches.
        size = limit + 1 if after == _after(cursor) else SCAN_BATCH
        batch = repository.page(session, query, size)
        exhausted = len(batch) < size
        for referral in batch:
            after = (referral.updated_at, referral.id)
            decision = access.decide_referral(policies, principal, referral, purpose, None, today)
            if decision.permit:
                granted.append((referral, access.grant_for(decision, principal, referral.referring_agency, purpose)))
                if len(granted) > limit:
                    break
    page = granted[:limit]
    items = [(r, g, render_referral(r, r.subject, crypto.envelope, g.fields)) for r, g in page]
    last = page[-1][0] if len(granted) > limit else None
    next_cursor = encode_cursor({"u": last.updated_at.isoformat(), "i": last.id}) if last else None
    return items, next_cursor


# -- lifecycle ---------------------------------------------------------------------------


def _actors(principal: Principal, referral: Referral) -> frozenset[Actor]:
    actors = set()
    if "coordinator" in principal.roles:
        actors.add(Actor.coordinator)
    if principal.agency_id == referral.referring_agency and "referrer" in principal.roles:
        actors.add(Actor.referrer)
    if principal.agency_id in referral.assigned_agencies and "caseworker" in principal.roles:
        actors.add(Actor.assigned)
    return frozenset(actors)


def transition(
    session: Session, principal: Principal, referral_id: str, data: TransitionIn, if_match: str | None,
    now: datetime, *, retention: retention_dates.RetentionRules | None = None,
) -> Referral:
    access.refuse_admin(principal)
    referral = load(session, referral_id, for_update=True)
    actors = _actors(principal, referral)
    if not actors and principal.agency_id != referral.referring_agency:
        raise Forbidden("You have no part in this referral's lifecycle.", slug="access-denied")
    if if_match is not None and if_match.strip() not in (etag(referral), "*"):
        raise PreconditionFailed(
            "The referral changed since you read it; read it again and retry.", etag=etag(referral)
        )
    statuses = vocabularies()["referral_status"].codes_set
    if data.to not in statuses:
        raise InvalidInput(
            f"{data.to!r} is not a referral status.",
            errors=[{"path": "$.to", "message": "unknown status", "type": "unknown_code",
                     "valid_codes": sorted(statuses)}],
        )
    source, target = Status(referral.status), Status(data.to)
    if target not in allowed_targets(source):
        raise Conflict(
            f"A referral in status {source.value!r} cannot move to {target.value!r}.",
            slug="transition-not-allowed",
            allowed=[s.value for s in allowed_targets(source)],
            allowed_for_you=[s.value for s in targets_for(source, actors)],
        )
    if not actors_for(source, target) & actors:
        who = ", ".join(sorted(a.value for a in actors_for(source, target)))
        raise Forbidden(
            f"Moving from {source.value!r} to {target.value!r} is for: {who}.",
            slug="transition-forbidden",
            allowed_for_you=[s.value for s in targets_for(source, actors)],
        )
    _check_transition_data(session, target, data)
    if target is Status.assigned:
        agencies_now = sorted(set(data.agencies))
        for assignment in list(referral.assignments):
            if assignment.agency_id not in agencies_now:
                referral.assignments.remove(assignment)
        held = set(referral.assigned_agencies)
        for agency_id in agencies_now:
            if agency_id not in held:
                referral.assignments.append(Assignment(agency_id=agency_id, assigned_at=now))
    referral.status = target.value
    if target is Status.closed:
        referral.outcome = data.outcome
    referral.version += 1
    referral.updated_at = now
    referral.history.append(StatusChange(
        from_status=source.value, to_status=target.value, reason=data.reason, outcome=data.outcome,
        agencies=sorted(set(data.agencies)), to_network=data.to_network, by_agency=principal.agency_id,
        by_client=principal.client_id, by_person=principal.act, at=now,
    ))
    session.flush()
    if retention is not None:
        retention_dates.apply(session, retention, referral, now)
    return referral


def update_consent(
    session: Session, principal: Principal, referral_id: str, data: ConsentUpdate, if_match: str | None,
    now: datetime, *, retention: retention_dates.RetentionRules | None = None,
) -> Referral:
    """Record a new consent status; partners lose what consent granted on their next sync."""
    access.refuse_admin(principal)
    referral = load(session, referral_id, for_update=True)
    owner = principal.agency_id == referral.referring_agency and "referrer" in principal.roles
    if not owner and "coordinator" not in principal.roles:
        raise Forbidden("Consent is recorded by the referring agency or a coordinator.", slug="access-denied")
    if if_match is not None and if_match.strip() not in (etag(referral), "*"):
        raise PreconditionFailed(
            "The referral changed since you read it; read it again and retry.", etag=etag(referral)
        )
    statuses = vocabularies()["consent_status"]
    bases = vocabularies()["legal_basis"]
    errors = []
    if not statuses.has(data.status):
        errors.append({"path": "$.status", "message": "unknown code", "type": "unknown_code",
                       "valid_codes": sorted(statuses.codes_set)})
    if data.legal_basis is not None and not bases.has(data.legal_basis):
        errors.append({"path": "$.legal_basis", "message": "unknown code", "type": "unknown_code",
                       "valid_codes": sorted(bases.codes_set)})
    if data.status != "given" and not data.legal_basis:
        errors.append({"path": "$.legal_basis", "message": "required when status is not 'given'",
                       "type": "missing", "valid_codes": sorted(bases.codes_set)})
    if errors:
        raise InvalidInput(f"{errors[0]['path']}: {errors[0]['message']}", errors=errors)
    referral.consent = {
        "status": data.status,
        "legal_basis": data.legal_basis or "consent",
        "recorded_at": now.isoformat(),
        "recorded_by": data.recorded_by or principal.act,
    }
    referral.consent_status = data.status
    referral.version += 1
    referral.updated_at = now
    session.flush()
    if retention is not None:
        retention_dates.apply(session, retention, referral, now)
    return referral


def _check_transition_data(session: Session, target: Status, data: TransitionIn) -> None:
    errors: list[dict[str, Any]] = []
    if target is Status.assigned:
        if not data.agencies:
            errors.append({"path": "$.agencies", "message": "assignment names the receiving agencies",
                           "type": "missing"})
        for index, agency_id in enumerate(data.agencies):
            if agencies.get_agency(session, agency_id) is None:
                errors.append({"path": f"$.agencies[{index}]", "message": f"unknown agency {agency_id!r}",
                               "type": "unknown_agency"})
    elif data.agencies:
        errors.append({"path": "$.agencies", "message": "agencies are only for assignment",
                       "type": "unexpected"})
    outcomes = vocabularies()["closure_outcome"].codes_set
    if target is Status.closed and data.outcome not in outcomes:
        errors.append({"path": "$.outcome", "message": "closing needs a closure_outcome code",
                       "type": "unknown_code" if data.outcome else "missing",
                       "valid_codes": sorted(outcomes)})
    if target is not Status.closed and data.outcome is not None:
        errors.append({"path": "$.outcome", "message": "an outcome is only for closing", "type": "unexpected"})
    if target in (Status.declined, Status.withdrawn, Status.transferred) and not (data.reason or "").strip():
        errors.append({"path": "$.reason", "message": f"{target.value} needs a reason", "type": "missing"})
    if target is Status.transferred and not data.to_network:
        errors.append({"path": "$.to_network", "message": "a transfer names the receiving network",
                       "type": "missing"})
    if errors:
        raise InvalidInput(f"{errors[0]['path']}: {errors[0]['message']}", errors=errors)


def events_page(
    session: Session, principal: Principal, purpose: str, after: str | None, limit: int,
    policies: PolicySet, today: date,
) -> tuple[list[tuple[StatusChange, access.Grant]], str]:
    """Status changes of referrals the caller may follow, oldest first; a cursor that keeps its place."""
    position = decode_cursor(after)
    try:
        start = int(position.get("e", 0)) if position else 0
    except (TypeError, ValueError):
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor") from None
    scope = access.scope(policies, principal, purpose, "referral", today)
    agency = None if scope.relation_free else principal.agency_id
    rows = list(repository.events(session, agency, start, limit)) if (scope.relation_free or scope.relations) else []
    referrals: dict[str, Referral] = {}
    visible = []
    for row in rows:
        referral = referrals.get(row.referral_id) or load(session, row.referral_id)
        referrals[referral.id] = referral
        decision = access.decide_referral(policies, principal, referral, purpose, None, today)
        if decision.permit and "status" in decision.fields:
            visible.append((row, access.grant_for(decision, principal, referral.referring_agency, purpose)))
    last = rows[-1].id if rows else start
    return visible, encode_cursor({"e": last})


def render_for_owner(session: Session, crypto: Crypto, referral: Referral) -> dict[str, Any]:
    """What the creating agency gets back: its own referral, in full."""
    return render_fields(session, crypto, referral, ALL_FIELDS)


def render_fields(session: Session, crypto: Crypto, referral: Referral, fields: frozenset[str]) -> dict[str, Any]:
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None
    return render_referral(referral, subject, crypto.envelope, fields)


STATUS_VIEW = frozenset({"id", "status", "status_history", "outcome", "assigned_agencies", "updated_at",
                         "referring_agency"})


def status_view(referral: Referral) -> dict[str, Any]:
    """Where a referral stands: no personal data, so no subject is touched."""
    from app.referrals.render import render_status

    return render_status(referral, STATUS_VIEW)
