"""Referral rules: create under the standard format, read through the access check, move through the lifecycle."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app import access
from app.agencies import repository as agencies
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Principal
from app.crypto.envelope import BlindIndex, DataKey, Envelope
from app.emergency import feed as emergency_feed
from app.emergency.models import EmergencyNotice
from app.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from app.meetings import feed as clock_feed
from app.meetings.models import ClockNotice
from app.pagination import decode_cursor, encode_cursor
from app.policy.model import DEFAULT_PROTOCOL
from app.policy.policy_set import PolicySet
from app.policy.training import TRAINING_SYSTEM_PREFIX, agency_fits, is_training_network, same_kind
from app.referrals import repository, sealed, sections
from app.referrals.lifecycle import Actor, Status, actors_for, allowed_targets, targets_for
from app.referrals.models import Assessment, Assignment, Referral, ReferralConcern, StatusChange
from app.referrals.schemas import (
    CODED_FIELDS_V2,
    REFERRAL_MODELS,
    SCHEMA_ID,
    AssessmentIn,
    ConsentUpdate,
    ReferralIn,
    TransitionIn,
    referral_field_paths,
)
from app.referrals.snapshot import AnyReferral, ReferralSnapshot
from app.retention import dates as retention_dates
from app.retention import tombstones
from app.subjects import service as subjects
from app.subjects import submissions
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


def _coded_values(body: Any, path: tuple[str, ...], where: str = "$") -> list[tuple[dict[str, Any], str, str]]:
    """(parent, key, JSON path) of every place a coded field sits; `[]` walks each item of a list."""
    head, *rest = path
    if head == "[]":
        items: list[Any] = body if isinstance(body, list) else []
        return [hit for i, item in enumerate(items) if isinstance(item, dict)
                for hit in _coded_values(item, tuple(rest), f"{where}[{i}]")]
    if not isinstance(body, dict):
        return []
    if not rest:
        return [(body, head, f"{where}.{head}")] if body.get(head) is not None else []
    return _coded_values(body.get(head), tuple(rest), f"{where}.{head}")


def standardise_codes(
    session: Session, principal: Principal, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Translate the agency's codes, check every code; returns (body, original codes).

    Two of the agency's codes that translate to one standard code count once (the published
    schema cannot see that they mean the same): a list keeps the first.
    """
    code_system = body.get("code_system")
    tables = mappings.resolve(session, code_system, principal.agency_id) if code_system else None
    catalog = vocabularies()
    originals: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for path, vocabulary_name in CODED_FIELDS_V2.items():
        vocabulary = catalog[vocabulary_name]
        for parent, leaf, field_path in _coded_values(body, path):
            value = parent[leaf]
            values = value if isinstance(value, list) else [value]
            standard = []
            for index, code in enumerate(values):
                mapped, translated = mappings.translate(tables, vocabulary_name, code)
                where = field_path + (f"[{index}]" if isinstance(value, list) else "")
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
            parent[leaf] = list(dict.fromkeys(standard)) if isinstance(value, list) else standard[0]
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


def referable_networks(policies: PolicySet, agency_id: str, today: date) -> list[str]:
    """The networks an agency may refer into: those where it is a party to an agreement in force."""
    return [n for n in policies.networks_of(agency_id) if access.in_force_party(policies, agency_id, n, today)]


def choose_network(policies: PolicySet, principal: Principal, asked: str | None, today: date) -> str:
    """The referring agency's network; named in the body when the agency belongs to several."""
    mine = referable_networks(policies, principal.agency_id, today)
    if asked is not None:
        if asked not in mine:
            _refuse_lapsed(policies, principal, asked, today)
            raise InvalidInput(
                f"Your agency cannot refer into network {asked!r}.",
                errors=[{"path": "$.network", "message": "not a network your agency is a party in",
                         "type": "unknown_network", "valid_codes": mine}],
            )
        return asked
    if not mine:
        for network_id in policies.networks_of(principal.agency_id):
            _refuse_lapsed(policies, principal, network_id, today)
        raise Forbidden("Your agency is a party to no agreement in force of any network.",
                        slug="no-network")
    if len(mine) > 1:
        raise InvalidInput(
            "Your agency belongs to several networks: name the network in the body.",
            errors=[{"path": "$.network", "message": "required: your agency belongs to several networks",
                     "type": "missing", "valid_codes": mine}],
        )
    return mine[0]


def _refuse_lapsed(policies: PolicySet, principal: Principal, network_id: str, today: date) -> None:
    """No new referral into a network whose agreement with the agency has lapsed, or not yet begun: why."""
    for lapse in access.not_in_force(policies, principal.agency_id, today, network_id=network_id):
        raise Forbidden(f"No new referral into network {network_id!r}: {lapse.reason}.", slug=lapse.slug,
                        network=network_id, **lapse.extensions)


def _keep_identifiers_apart(policies: PolicySet, network_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A training network's identifiers are kept under `training:`, which a real network's may not use.

    Their keyed digests then never meet: a synthetic person is never linked to a real one (nor tells
    a trainee that a real identifier is known), whatever the identifiers say.
    """
    subject = body.get("subject")
    identifiers = subject.get("identifiers") if isinstance(subject, dict) else None
    if not isinstance(subject, dict) or not isinstance(identifiers, list):
        return body
    systems = [(k, i["system"]) for k, i in enumerate(identifiers) if isinstance(i, dict) and isinstance(
        i.get("system"), str)]
    if is_training_network(policies, network_id):
        renamed = dict((k, s if s.startswith(TRAINING_SYSTEM_PREFIX) else TRAINING_SYSTEM_PREFIX + s)
                       for k, s in systems)
        return {**body, "subject": {**subject, "identifiers": [
            {**i, "system": renamed[k]} if k in renamed else i for k, i in enumerate(identifiers)]}}
    reserved = [k for k, s in systems if s.startswith(TRAINING_SYSTEM_PREFIX)]
    if reserved:
        raise InvalidInput("The referral is invalid.", errors=[
            {"path": f"$.subject.identifiers[{k}].system", "type": "reserved",
             "message": f"identifier systems starting {TRAINING_SYSTEM_PREFIX!r} are for training networks"}
            for k in reserved])
    return body


def _closed_to_referrals(policies: PolicySet, network_id: str, today: date) -> str | None:
    """Why a network takes no referral by transfer today: its coordinator is a party to no agreement
    of it in force (the one that lapsed named); None when it takes them."""
    network = policies.network(network_id)
    coordinator = network.coordinator if network is not None else None
    if coordinator is None or access.in_force_party(policies, coordinator, network_id, today):
        return None
    lapsed = access.not_in_force(policies, coordinator, today, network_id=network_id)
    why = f": {lapsed[0].reason}" if lapsed else ""
    return f"network {network_id!r} has no agreement in force and takes no new referral{why}"


@dataclass(frozen=True, slots=True)
class ValidReferral:
    """A referral body that passed every check a write does not need: network, codes, schema, consent."""

    network_id: str
    schema_id: str
    data: ReferralIn
    originals: dict[str, Any]


def validate(
    session: Session, principal: Principal, raw: dict[str, Any], today: date, policies: PolicySet,
) -> ValidReferral:
    """Check a posted referral; reads only (the agency's code mapping, if it names one).

    Run before the writer's turn is taken: none of it needs the write lock.
    """
    access.refuse_admin(principal)
    if "referrer" not in principal.roles:
        raise Forbidden("Posting a referral needs the referrer role.")
    network_id = choose_network(policies, principal, raw.get("network"), today)
    body, originals = standardise_codes(session, principal, raw)
    body = _keep_identifiers_apart(policies, network_id, body)
    schema_id = raw.get("schema") or SCHEMA_ID
    try:
        data = REFERRAL_MODELS[schema_id].model_validate(body)
    except (KeyError, ValidationError) as exc:  # a mapped code can still break a constraint
        from app.errors import validation_errors

        errors = validation_errors(exc.errors()) if isinstance(exc, ValidationError) else [
            {"path": "$.schema", "message": "not a published referral schema", "type": "literal_error"}]
        raise InvalidInput("The referral is invalid.", errors=errors) from None
    _check_consent(data)
    return ValidReferral(network_id, schema_id, data, originals)


def create(
    session: Session, crypto: Crypto, principal: Principal, raw: dict[str, Any], now: datetime,
    *, policies: PolicySet, retention: retention_dates.RetentionRules | None = None,
) -> Referral:
    """Validate and store a posted referral in one unit of work (the seeds; the API splits the two)."""
    valid = validate(session, principal, raw, now.date(), policies)
    return create_valid(session, crypto, principal, valid, now, retention=retention)[0]


def create_valid(
    session: Session, crypto: Crypto, principal: Principal, valid: ValidReferral, now: datetime,
    *, retention: retention_dates.RetentionRules | None = None,
) -> tuple[Referral, subjects.Link]:
    """Store a validated referral: its subject created or linked, its first step, its dates.

    Everything in the writer's turn; `prepare` and `store` do the same with the sealing before it.
    Returns the referral and its link (the subject, and its data key already unwrapped)."""
    referral = _new_referral(session, principal, valid, now, retention)
    # A person first known through this referral is kept as long as it is, from the insert on.
    link = subjects.create_or_link(session, crypto.envelope, crypto.blind, valid.data.subject, now,
                                   retain_until=referral.retain_until)
    referral.subject_id = link.subject.id
    _seal_new(referral, link.key, link.conflicts, principal, valid, now)
    _insert(session, referral, link, principal, retention)
    return referral, link


@dataclass(frozen=True, slots=True)
class Prepared:
    """A new referral made before the writer's turn, sealed for the person its identifiers named then."""

    valid: ValidReferral
    referral: Referral
    plan: subjects.Plan


def prepare(
    session: Session, crypto: Crypto, principal: Principal, valid: ValidReferral, now: datetime,
    *, retention: retention_dates.RetentionRules | None = None,
) -> Prepared | None:
    """Reads only: the person, their data key and every sealed field, before the writer's turn.

    None when the identifiers name several known people (decided in the turn, by `create_valid`).
    """
    plan = subjects.plan_link(session, crypto.envelope, crypto.blind, valid.data.subject)
    if plan is None:
        return None
    referral = _new_referral(session, principal, valid, now, retention)
    referral.subject_id = plan.subject_id
    _seal_new(referral, plan.key, (), principal, valid, now)
    return Prepared(valid, referral, plan)


def store(
    session: Session, crypto: Crypto, principal: Principal, prepared: Prepared, now: datetime,
    *, retention: retention_dates.RetentionRules | None = None,
) -> tuple[Referral, subjects.Link, bool]:
    """In the writer's turn: the prepared referral, if who its person is still holds.

    When it no longer does (a concurrent referral recorded or changed the person, an erasure),
    the referral is made again here by `create_valid`. The third value says so: what was
    rendered from the prepared one must then be rendered again.
    """
    referral = prepared.referral
    link = subjects.commit_link(session, crypto.blind, prepared.valid.data.subject, prepared.plan, now,
                                retain_until=referral.retain_until)
    if link is None:
        return (*create_valid(session, crypto, principal, prepared.valid, now, retention=retention), True)
    _insert(session, referral, link, principal, retention)
    return referral, link, False


def _new_referral(
    session: Session, principal: Principal, valid: ValidReferral, now: datetime,
    retention: retention_dates.RetentionRules | None,
) -> Referral:
    """The referral's own columns, its first step and (known before the insert) its retention date."""
    data = valid.data
    referral = Referral(
        id=new_referral_id(),
        schema_id=valid.schema_id,
        network_id=valid.network_id,
        referring_agency=principal.agency_id,
        referring_client=principal.client_id,
        concerns=list(dict.fromkeys(data.concerns)),
        vulnerability_factors=list(dict.fromkeys(data.vulnerability_factors)),
        protective_factors=list(dict.fromkeys(data.protective_factors)),
        risk_level=data.risk_level,
        urgency=data.urgency,
        consent={
            "status": data.consent.status,
            "legal_basis": data.consent.legal_basis or ("consent" if data.consent.status == "given" else None),
            "recorded_at": (data.consent.recorded_at or now).astimezone(UTC).isoformat(),
        },
        consent_status=data.consent.status,
        requested_services=list(dict.fromkeys(data.requested_services)),
        intervention_type=data.intervention_type,
        do_not_contact=data.do_not_contact,
        code_system=data.code_system,
        original_codes=valid.originals,
        status=Status.submitted.value,
        version=1,
        created_at=now,
        updated_at=now,
        history=[],
        assignments=[],  # a new referral has none: nothing to load after the insert
    )
    if retention is not None:  # a new referral is open, dated by its agreements
        sector = retention_dates.sector_of(session, principal.agency_id)  # as every later recomputation reads it
        referral.retain_until = retention_dates.referral_retain_until(retention, referral, sector, now)
    referral.history.append(StatusChange(
        from_status=None, to_status=Status.submitted.value, agencies=[],
        by_agency=principal.agency_id, by_client=principal.client_id, at=now,
    ))
    return referral


def _seal_new(
    referral: Referral, key: DataKey, conflicts: tuple[str, ...], principal: Principal, valid: ValidReferral,
    now: datetime,
) -> None:
    """Its subject.* fields (its own submission) and free text, sealed with the person's key.

    Erasing the person shreds them (app/referrals/sealed.py)."""
    data = valid.data
    submissions.attach(referral, key, conflicts, data.subject, now)
    referral.referring_person = sealed.seal(
        key, data.referring_person or principal.act, sealed.on_referral(sealed.REFERRING_PERSON, referral.id))
    referral.consent_recorded_by = sealed.seal(
        key, data.consent.recorded_by or principal.act, sealed.on_referral(sealed.CONSENT_RECORDED_BY, referral.id))
    if data.narrative is not None:
        referral.narrative = key.seal(data.narrative.encode(), f"{NARRATIVE_CONTEXT}:{referral.id}")
    referral.sections = sections.seal(key, referral.id, sections.of(data))


def _insert(
    session: Session, referral: Referral, link: subjects.Link, principal: Principal,
    retention: retention_dates.RetentionRules | None,
) -> None:
    session.add(referral)
    session.add_all([ReferralConcern(referral_id=referral.id, concern=concern) for concern in referral.concerns])
    session.flush()  # one flush: the referral, its first step and its concerns
    if principal.act is not None:  # the step's sealed text is bound to its row id, known only now
        _seal_step(link.key, referral.id, referral.history[0], reason=None, by_person=principal.act)
        session.flush()
    if retention is not None and not link.new:  # a known person: its longest-kept referral may change
        retention_dates.refresh_subject(session, referral.subject_id)


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


@dataclass(frozen=True, slots=True)
class ReplyGrant:
    grant: access.Grant
    decision_purpose: str


def reply_grant(
    policies: PolicySet, principal: Principal, referral: Referral, purpose: str | None, today: date
) -> ReplyGrant | None:
    """What a writer may read of the record it just changed, for the purpose it stated; None: nothing."""
    if not purpose:
        return None
    try:
        stated = access.require_purpose(policies, principal, purpose, today)
        grant = access.referral_grant(policies, principal, referral, stated, None, today)
    except (BadRequest, access.AccessDenied):
        return None  # the change stands; the reply just carries no case data
    return ReplyGrant(grant, stated)


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
    principal: Principal,
    purpose: str,
    f: repository.ReferralFilter,
    cursor: str | None,
    limit: int,
    policies: PolicySet,
    today: date,
) -> tuple[list[tuple[ReferralSnapshot, access.Grant]], str | None]:
    """One page of the referrals an agreement grants, each with its own grant (app.door projects)."""
    scope = access.scope(policies, principal, purpose, "referral", today)
    if not scope.relation_free and not scope.relations:
        return [], None
    agencies = None
    assigned_to = None
    if not scope.relation_free:
        agencies = (principal.agency_id,) if scope.relations & {"owner", "referrer"} else ()
        assigned_to = principal.agency_id if "assigned" in scope.relations else None
    after = _after(cursor)
    networks = access.networks_decided_for(policies, principal, today)
    if not networks:
        return [], None
    # Records no grant admits are not even loaded: each grant's relation to the caller and its
    # conditions on attributes SQL can see (app.referrals.repository._candidate).
    prefilter = scope.conditions or None
    granted: list[tuple[ReferralSnapshot, access.Grant]] = []
    exhausted = False
    while len(granted) <= limit and not exhausted:
        query = repository.ReferralFilter(
            statuses=f.statuses, risk_levels=f.risk_levels, concerns=f.concerns,
            updated_since=f.updated_since, agencies=agencies, assigned_to=assigned_to, after=after,
            any_of=prefilter, caller_agency=principal.agency_id, networks=networks,
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
    last = page[-1][0] if len(granted) > limit else None
    next_cursor = encode_cursor({"u": last.updated_at.isoformat(), "i": last.id}) if last else None
    return page, next_cursor


# -- lifecycle ---------------------------------------------------------------------------


def _actors(policies: PolicySet, principal: Principal, referral: Referral) -> frozenset[Actor]:
    """The lifecycle roles the caller plays on this referral, within its network."""
    actors = set()
    if access.is_coordinator(policies, principal, referral.network_id):
        actors.add(Actor.coordinator)
    if principal.agency_id == referral.referring_agency and "referrer" in principal.roles:
        actors.add(Actor.referrer)
    if principal.agency_id in referral.assigned_agencies and "caseworker" in principal.roles:
        actors.add(Actor.assigned)
    return frozenset(actors)


@dataclass(frozen=True, slots=True)
class Before:
    """Where a referral stood before a change: what its log entries name."""

    status: str
    network_id: str


def _unchanged_since_read(referral: Referral, if_match: str | None) -> None:
    """`If-Match`, when sent, names the version the caller last read (or `*`)."""
    if if_match is not None and if_match.strip() not in (etag(referral), "*"):
        raise PreconditionFailed(
            "The referral changed since you read it; read it again and retry.", etag=etag(referral)
        )


def transition(
    session: Session, policies: PolicySet, principal: Principal, referral_id: str, data: TransitionIn,
    if_match: str | None, now: datetime, *, crypto: Crypto, retention: retention_dates.RetentionRules | None = None,
) -> tuple[Referral, Before]:
    access.refuse_admin(principal)
    referral = load(session, referral_id, for_update=True)
    before = Before(referral.status, referral.network_id)
    access.authorize_change(policies, principal, referral, now.date(), action="Moving this referral",
                            needs=frozenset({"owner", "referrer", "assigned", "coordinator"}))
    actors = _actors(policies, principal, referral)
    statuses = vocabularies()["referral_status"].codes_set
    if data.to not in statuses:
        raise InvalidInput(
            "$.to: not a referral status.",
            errors=[{"path": "$.to", "message": "unknown status", "type": "unknown_code",
                     "valid_codes": sorted(statuses)}],
        )
    _unchanged_since_read(referral, if_match)  # after the body: bad input is a 422 whatever was read
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
        raise access.ChangeDenied(
            f"Moving from {source.value!r} to {target.value!r} is for: {who} (of network {referral.network_id!r}).",
            owner_agency=referral.referring_agency, subject_id=referral.subject_id, network=referral.network_id,
            allowed_for_you=[s.value for s in targets_for(source, actors)],
        )
    _check_transition_data(session, policies, referral, target, data, now.date())
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
    step = StatusChange(
        from_status=source.value, to_status=target.value, outcome=data.outcome,
        agencies=sorted(set(data.agencies)), to_network=data.to_network, by_agency=principal.agency_id,
        by_client=principal.client_id, at=now,
    )
    referral.history.append(step)
    if target is Status.transferred and data.to_network is not None:
        _move_to_network(referral, data.to_network, principal, now)
    session.flush()
    # Every step this change added is the caller's; only the first carries the reason.
    key = _data_key(session, crypto, referral)
    for added in referral.history[referral.history.index(step):]:
        _seal_step(key, referral.id, added, reason=data.reason if added is step else None, by_person=principal.act)
    session.flush()
    if retention is not None:
        retention_dates.apply(session, retention, referral, now)
    return referral, before


def _move_to_network(referral: Referral, network_id: str, principal: Principal, now: datetime) -> None:
    """A transfer: the receiving network's coordinator triages it afresh; nobody keeps an assignment."""
    referral.network_id = network_id
    referral.assignments.clear()
    referral.status = Status.submitted.value
    referral.history.append(StatusChange(
        from_status=Status.transferred.value, to_status=Status.submitted.value, reason=None, outcome=None,
        agencies=[], to_network=network_id, by_agency=principal.agency_id, by_client=principal.client_id,
        at=now,  # by_person is sealed by transition() once the row has its id
    ))


def _data_key(session: Session, crypto: Crypto, referral: Referral) -> DataKey:
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None  # a referral's subject row outlives it
    return subjects.data_key(crypto.envelope, subject)


def _seal_step(
    key: DataKey, referral_id: str, step: StatusChange, *, reason: str | None, by_person: str | None
) -> None:
    """A status change's free text, bound to its row id (so sealed once the row is inserted)."""
    step.reason = sealed.seal(key, reason, sealed.on_step(sealed.STEP_REASON, referral_id, step.id))
    step.by_person = sealed.seal(key, by_person, sealed.on_step(sealed.STEP_BY_PERSON, referral_id, step.id))


def transfer_event(
    policies: PolicySet, principal: Principal, referral: Referral, from_network: str, request_id: str | None
) -> AuditEvent:
    """A transfer discloses the whole referral to the receiving network's coordinator agency."""
    network = policies.network(referral.network_id)
    return AuditEvent(
        event_type=EventType.disclosure.value, actor_agency=referral.referring_agency,
        recipient_agency=network.coordinator if network else None, purpose="transfer", decision="permit",
        agreement_id=None, rule_id="transfer", subject_id=referral.subject_id,
        details={"client_id": principal.client_id, "on_behalf_of": principal.act, "request_id": request_id,
                 "record_ids": {"referral_id": referral.id}, "fields": sorted(ALL_FIELDS),
                 "from_network": from_network, "to_network": referral.network_id},
    )


def update_consent(
    session: Session, policies: PolicySet, principal: Principal, referral_id: str, data: ConsentUpdate,
    if_match: str | None, now: datetime, *, crypto: Crypto, retention: retention_dates.RetentionRules | None = None,
) -> Referral:
    """Record a new consent status; partners lose what consent granted on their next sync."""
    access.refuse_admin(principal)
    referral = load(session, referral_id, for_update=True)
    relations = access.authorize_change(policies, principal, referral, now.date(), action="Recording consent",
                                        needs=frozenset({"owner", "coordinator"}))
    if "coordinator" not in relations and "referrer" not in principal.roles:
        raise access.ChangeDenied(
            "Consent is recorded by the referring agency (with the referrer role) or the network's coordinator.",
            owner_agency=referral.referring_agency, subject_id=referral.subject_id, network=referral.network_id,
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
    _unchanged_since_read(referral, if_match)  # after the body: bad input is a 422 whatever was read
    referral.consent = {
        "status": data.status,
        "legal_basis": data.legal_basis or "consent",
        "recorded_at": now.isoformat(),
    }
    referral.consent_recorded_by = sealed.seal(
        _data_key(session, crypto, referral), data.recorded_by or principal.act,
        sealed.on_referral(sealed.CONSENT_RECORDED_BY, referral.id),
    )
    referral.consent_status = data.status
    referral.version += 1
    referral.updated_at = now
    session.flush()
    if retention is not None:
        retention_dates.apply(session, retention, referral, now)
    return referral


# -- re-assessment -----------------------------------------------------------------------

REASSESSING_ROLES = {"owner": {"referrer"}, "referrer": {"referrer"}, "assigned": {"caseworker"}}
ASSESSED = ("risk_level", "concerns", "vulnerability_factors", "protective_factors", "intervention_type")
_ASSESSED_VOCABULARIES = {"risk_level": "risk_level", "concerns": "concern_category",
                          "vulnerability_factors": "vulnerability_factor",
                          "protective_factors": "protective_factor", "intervention_type": "intervention_type"}


def reassess(
    session: Session, policies: PolicySet, principal: Principal, referral_id: str, data: AssessmentIn,
    if_match: str | None, now: datetime, *, crypto: Crypto, retention: retention_dates.RetentionRules | None = None,
) -> tuple[Referral, list[str]]:
    """A new assessment: the fields given become the referral's current ones (what agreements'
    `when` conditions see), and the history keeps who, when and why. Returns the fields changed.

    Who may re-assess is the network's protocol (`reassessment_by`).
    """
    access.refuse_admin(principal)
    referral = load(session, referral_id, for_update=True)
    network = policies.network(referral.network_id)
    protocol = network.protocol if network is not None else DEFAULT_PROTOCOL
    needs = frozenset(protocol.reassessment_by)
    relations = access.authorize_change(policies, principal, referral, now.date(), action="Re-assessing a referral",
                                        needs=needs)
    # Each relation acts through its role: the referring agency as referrer, an assigned one as caseworker.
    acting = {r for r in relations & needs if r == "coordinator" or principal.roles & REASSESSING_ROLES[r]}
    if not acting:
        raise access.ChangeDenied(
            "Re-assessing a referral needs the role of your relation to it: referrer for the referring agency, "
            "caseworker for an assigned one.",
            owner_agency=referral.referring_agency, subject_id=referral.subject_id, network=referral.network_id,
        )
    given = data.model_dump(include=set(ASSESSED), exclude_unset=True)
    errors: list[dict[str, Any]] = []
    if not given:
        errors.append({"path": "$", "message": f"give at least one of: {', '.join(ASSESSED)}", "type": "missing"})
    for name, value in given.items():
        vocabulary = vocabularies()[_ASSESSED_VOCABULARIES[name]]
        for index, code in enumerate(value if isinstance(value, list) else [value]):
            if code is not None and not vocabulary.has(code):
                where = f"$.{name}[{index}]" if isinstance(value, list) else f"$.{name}"
                errors.append({"path": where, "message": "unknown code", "type": "unknown_code",
                               "valid_codes": sorted(vocabulary.codes_set)})
    for name in ("risk_level", "concerns", "vulnerability_factors", "protective_factors"):
        if name in given and given[name] is None:  # only the intervention type may be unset again
            errors.append({"path": f"$.{name}", "message": "a referral always has one: give it, or leave it out",
                           "type": "missing"})
    if errors:
        raise InvalidInput(f"{errors[0]['path']}: {errors[0]['message']}", errors=errors)
    _unchanged_since_read(referral, if_match)  # after the body: bad input is a 422 whatever was read
    changed = [name for name in ASSESSED if name in given and given[name] != getattr(referral, name)]
    for name in changed:
        setattr(referral, name, given[name])
    if "concerns" in changed:
        session.execute(delete(ReferralConcern).where(ReferralConcern.referral_id == referral.id))
        session.add_all([ReferralConcern(referral_id=referral.id, concern=c) for c in referral.concerns])
    number = (session.scalar(select(func.max(Assessment.number)).where(Assessment.referral_id == referral.id))
              or 0) + 1
    key = _data_key(session, crypto, referral)
    session.add(Assessment(
        referral_id=referral.id, number=number, at=now, by_agency=principal.agency_id, by_client=principal.client_id,
        risk_level=referral.risk_level, concerns=list(referral.concerns),
        vulnerability_factors=list(referral.vulnerability_factors),
        protective_factors=list(referral.protective_factors), intervention_type=referral.intervention_type,
        reason=sealed.seal(key, data.reason, assessment_context(sealed.ASSESSMENT_REASON, referral.id, number)),
        by_person=sealed.seal(key, data.assessed_by or principal.act,
                              assessment_context(sealed.ASSESSMENT_BY, referral.id, number)),
    ))
    referral.version += 1
    referral.updated_at = now
    session.flush()
    if retention is not None:  # the risk level is one of the conditions retention rules read
        retention_dates.apply(session, retention, referral, now)
    return referral, changed


def assessment_context(field: str, referral_id: str, number: int) -> str:
    """An assessment's sealed text is bound to its referral and number."""
    return f"{field}:{referral_id}:{number}"


def assessments(session: Session, crypto: Crypto, referral: AnyReferral) -> list[dict[str, Any]]:
    """A referral's re-assessments, oldest first, their free text opened (None once erased)."""
    rows = session.scalars(
        select(Assessment).where(Assessment.referral_id == referral.id).order_by(Assessment.number)
    ).all()
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None  # a referral's subject row outlives it
    opener = sealed.Opener(crypto.envelope, subject)
    return [
        {"number": row.number, "at": row.at.isoformat(), "by_agency": row.by_agency, "risk_level": row.risk_level,
         "concerns": list(row.concerns), "vulnerability_factors": list(row.vulnerability_factors),
         "protective_factors": list(row.protective_factors), "intervention_type": row.intervention_type,
         "reason": opener.text(row.reason, assessment_context(sealed.ASSESSMENT_REASON, referral.id, row.number)),
         "assessed_by": opener.text(row.by_person,
                                    assessment_context(sealed.ASSESSMENT_BY, referral.id, row.number))}
        for row in rows
    ]


def _check_transition_data(
    session: Session, policies: PolicySet, referral: Referral, target: Status, data: TransitionIn, today: date
) -> None:
    errors: list[dict[str, Any]] = []
    if target is Status.assigned:
        if not data.agencies:
            errors.append({"path": "$.agencies", "message": "assignment names the receiving agencies",
                           "type": "missing"})
        for index, agency_id in enumerate(data.agencies):
            if agencies.get_agency(session, agency_id) is None:
                errors.append({"path": f"$.agencies[{index}]", "message": f"unknown agency {agency_id!r}",
                               "type": "unknown_agency"})
            elif not (access.in_force_party(policies, agency_id, referral.network_id, today)
                      and agency_fits(policies, agency_id, referral.network_id)):
                errors.append({"path": f"$.agencies[{index}]",
                               "message": f"{agency_id!r} is not a party to an agreement in force of network "
                                          f"{referral.network_id!r}",
                               "type": "not_in_network"})
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
    if target is Status.transferred:
        # Never between a training network and a real one (app/policy/training.py).
        others = sorted(n for n in policies.networks
                        if n != referral.network_id and same_kind(policies, n, referral.network_id))
        if not data.to_network:
            errors.append({"path": "$.to_network", "message": "a transfer names the receiving network",
                           "type": "missing", "valid_codes": others})
        elif data.to_network in policies.networks and not same_kind(policies, data.to_network, referral.network_id):
            errors.append({"path": "$.to_network", "message": "a referral never moves between a training network "
                           "and a real one", "type": "training_isolation", "valid_codes": others})
        elif data.to_network not in others:
            errors.append({"path": "$.to_network",
                           "message": f"{data.to_network!r} is not another network on this deployment",
                           "type": "unknown_network", "valid_codes": others})
        elif (closed := _closed_to_referrals(policies, data.to_network, today)) is not None:
            errors.append({"path": "$.to_network", "message": closed, "type": "no_agreement_in_force",
                           "valid_codes": others})
    elif data.to_network is not None:
        errors.append({"path": "$.to_network", "message": "to_network is only for a transfer", "type": "unexpected"})
    if errors:
        raise InvalidInput(f"{errors[0]['path']}: {errors[0]['message']}", errors=errors)


def events_page(
    session: Session, principal: Principal, purpose: str, after: str | None, limit: int,
    policies: PolicySet, today: date,
) -> tuple[list[tuple[StatusChange | EmergencyNotice | ClockNotice, access.Grant]], str]:
    """Status changes of referrals the caller may follow, emergency grants on the referrals it owns or
    coordinates (app/emergency/feed.py) and the clocks' notices of the networks it coordinates
    (app/meetings/feed.py), oldest first; a cursor that keeps its place in each."""
    position = decode_cursor(after)
    try:
        start = int(position.get("e", 0)) if position else 0
        notices_start = int(position.get("n", 0)) if position else 0
        clock_start = int(position.get("c", 0)) if position else 0
    except (TypeError, ValueError):
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor") from None
    scope = access.scope(policies, principal, purpose, "referral", today)
    agency = None if scope.relation_free else principal.agency_id
    networks = access.networks_decided_for(policies, principal, today)
    searchable = (scope.relation_free or scope.relations) and networks
    rows = list(repository.events(session, agency, start, limit, networks)) if searchable else []
    notices = emergency_feed.notices_for(session, policies, principal, networks, notices_start, limit)
    clocks = clock_feed.notices_for(session, policies, principal, networks, clock_start, limit)
    merged = emergency_feed.merge(rows, emergency_feed.merge(notices, clocks, limit), limit)
    referrals: dict[str, Referral] = {}
    visible = []
    for row in merged:
        referral = referrals.get(row.referral_id) or load(session, row.referral_id)
        referrals[referral.id] = referral
        decision = access.decide_referral(policies, principal, referral, purpose, None, today)
        if decision.permit and "status" in decision.fields:
            visible.append((row, access.grant_for(decision, principal, referral.referring_agency, purpose)))
    steps = [r for r in merged if not emergency_feed.is_notice(r) and not clock_feed.is_clock(r)]
    last = max((r.id for r in steps), default=start)
    last_notice = max((r.id for r in merged if emergency_feed.is_notice(r)), default=notices_start)
    last_clock = max((r.id for r in merged if clock_feed.is_clock(r)), default=clock_start)
    return visible, encode_cursor({"e": last, "n": last_notice, "c": last_clock})


