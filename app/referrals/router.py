"""HTTP for referrals: create, read, list, move through the lifecycle, follow the change feed."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from app import access, disclose, door, idempotency
from app.access import JUSTIFICATION_MAX, PURPOSE_MAX
from app.audit.events import AuditEvent, EventType
from app.auth.principal import Caller, CurrentPrincipal, Principal, TokenCaller, caller_of
from app.emergency import feed as emergency_feed
from app.emergency.models import EmergencyNotice
from app.errors import BadRequest, Forbidden, NotFound
from app.lean import LeanRoute, lean
from app.meetings import feed as clock_feed
from app.meetings.models import ClockNotice
from app.pagination import DEFAULT_LIMIT, ISO_TIMESTAMP, MAX_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from app.policy.vocabulary import EMERGENCY_PURPOSE
from app.referrals import repository, service, snapshot, worklist
from app.referrals.models import Referral
from app.referrals.render import render_referral
from app.referrals.schemas import (
    AssessmentIn,
    AssessmentPage,
    ConsentUpdate,
    EventOut,
    EventPage,
    ReferralOut,
    ReferralPage,
    ReferralPost,
    TransitionIn,
    Worklist,
    WorklistKind,
)
from app.referrals.snapshot import AnyReferral, ReferralSnapshot
from app.retention.dates import RetentionRules
from app.state import AppState, DbSession, ReadSession, State, get_state, unit_of_work
from app.subjects import links
from app.subjects.models import Subject

router = APIRouter(tags=["referrals"], route_class=LeanRoute)
PURPOSE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "X-Purpose missing or not open to the caller"},
    403: {"description": "No agreement grants this read; `agreement-expired`/`agreement-not-yet-effective`: "
                         "your agency's agreement is past its review_by, or not yet effective"},
    404: {"description": "No such referral"},
}


VIEW_MAX = 64
ViewParam = Annotated[
    str | None,
    Query(max_length=VIEW_MAX, description="Ask for a named view; default: the most detailed one granted."),
]
_PRINTABLE = re.compile(access.PURPOSE_PATTERN)
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]


def _grant_headers(grant: access.Grant) -> dict[str, str]:
    decision = grant.decision
    return {
        "X-Granted-View": decision.view or "",
        "X-Agreement": f"{decision.agreement_id};version={decision.agreement_version}",
    }


def crypto(state: AppState) -> service.Crypto:
    return service.Crypto(state.envelope, state.blind_index)


def retention(state: AppState) -> RetentionRules:
    """The agreements in force, for the retention date every create and change recomputes."""
    return RetentionRules.of(state.policies.current, state.settings.max_open_retention)


def _referral_response(document: dict[str, Any], status_code: int, tag: str, **headers: str) -> JSONResponse:
    return JSONResponse(document, status_code=status_code, headers={"ETag": tag, **headers})


@router.post(
    "/v1/referrals",
    operation_id="create_referral",
    summary="Create a referral",
    description=(
        "Posts a referral about a person to the network your agency is a party to; the reply is the "
        "stored referral with its `ETag` and `Location`. Send `Idempotency-Key` to make retries safe: a "
        "replay answers the stored result with `Idempotent-Replayed: true`."
    ),
    openapi_extra={"x-required-roles": ["referrer"], "x-case-data": True,
                   "x-server-side-rules": ["`subject.date_of_birth` is not after today",
                                           "`code_system` is one of your agency's code mappings",
                                           "`network` is one your agency is a party to",
                                           "each coded field holds a code of its vocabulary or, with `code_system`, "
                                           "of your agency's mapping (the exact schema for your agency: "
                                           "GET /v1/schemas/referral/{version} with your token)"]},
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralOut,
    responses={403: {"description": "Not a referrer, or a party to no agreement in force of any network; "
                                    "`agreement-expired`/`agreement-not-yet-effective`: no new referral into a "
                                    "network whose agreement with your agency is not in force (nothing written)"},
               409: {"description": "Idempotency-Key reused with another body"},
               422: {"description": "Invalid referral; unknown codes list the valid ones"}},
)
def create_referral(
    request: Request,
    state: State,
    caller: Caller,
    body: Annotated[ReferralPost, Body()],
    idempotency_key: idempotency.IdempotencyKey = None,
) -> Any:
    # One thread hop (this handler), and the writer's turn only for the writes: the client's
    # standing, an earlier result under the key and the body's checks are reads, done first.
    raw = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    key = idempotency.check_key(idempotency_key)
    fingerprint = idempotency.request_hash("POST", "/v1/referrals", raw)
    policies, now, rules = state.policies.current, state.clock(), retention(state)
    with state.read_sessions() as reading:
        principal = caller.confirm(reading)
        replay = idempotency.find(reading, principal.client_id, key, fingerprint) if key is not None else None
        valid = None if replay is not None else service.validate(reading, principal, raw, now.date(), policies)
        # Who the person is, their key, the sealed fields: all before the writer's turn.
        prepared = None if valid is None else service.prepare(reading, crypto(state), principal, valid, now,
                                                               retention=rules)
    ctx = disclose.ReadContext(principal, "", None, request.state.request_id)
    early = None if prepared is None else door.own_submission(
        ctx, prepared.referral, prepared.plan.stand_in(), state.envelope, service.ALL_FIELDS,
        event_type=EventType.create, reason="created", key=prepared.plan.key,
    )
    with unit_of_work(state) as session:  # committed here, before the response leaves
        if valid is not None and key is not None:  # a twin may have finished meanwhile
            replay = idempotency.find(session, principal.client_id, key, fingerprint)
        linked: list[AuditEvent] = []  # a link to a known person is logged with the creation
        if replay is not None:
            referral = service.load(session, replay.resource_id)
            # A replay is decided again: an agency no longer party to the network gets nothing back.
            access.authorize_change(policies, principal, referral, now.date(),
                                    action="Replaying a referral's creation", needs=frozenset({"owner"}))
            released = door.own_submission(
                ctx, referral, _subject(session, referral), state.envelope, service.ALL_FIELDS,
                event_type=EventType.access, reason="idempotent replay of the creating request",
            )
            status_code, replayed = replay.status_code, {"Idempotent-Replayed": "true"}
        else:
            assert valid is not None
            if prepared is not None:
                referral, link, remade = service.store(session, crypto(state), principal, prepared, now,
                                                       retention=rules)
            else:  # identifiers naming several people: decided in the turn
                (referral, link), remade = service.create_valid(session, crypto(state), principal, valid, now,
                                                                retention=rules), True
            if key is not None:
                idempotency.remember(session, principal.client_id, key, fingerprint, 201, "referral", referral.id)
            released = early if early is not None and not remade else door.own_submission(
                ctx, referral, link.subject, state.envelope, service.ALL_FIELDS,
                event_type=EventType.create, reason="created", key=link.key,
            )
            linked = links.link_events(session, principal, referral, request.state.request_id,
                                       new_subject=link.new)
            status_code, replayed = 201, {}
        headers = {"ETag": service.etag(referral), "Location": f"/v1/referrals/{referral.id}", **replayed}
        response = door.send(state, session, [released], door.one, status_code=status_code, headers=headers,
                             extra_events=linked)
    return response


def _subject(session: Session, referral: AnyReferral) -> Subject:
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None  # a referral's subject row outlives it (erasure keeps a tombstone)
    return subject


async def _lean_get_referral(request: Request) -> Response | None:
    """The read with no dependency solving, for a request whose parameters are plainly valid.

    Anything else (a header or the view too long, a purpose not printable ASCII) returns None
    and goes the declared way, where FastAPI's validation answers it (app.lean).
    """
    headers, query = request.headers, request.query_params
    purpose, justification, view = headers.get("X-Purpose"), headers.get("X-Justification"), query.get("view")
    if purpose is not None and (len(purpose) > PURPOSE_MAX or _PRINTABLE.fullmatch(purpose) is None):
        return None
    if (justification is not None and len(justification) > JUSTIFICATION_MAX) or (
        view is not None and len(view) > VIEW_MAX
    ):
        return None
    state = get_state(request)
    caller = await caller_of(request, state)
    return await _read_referral(request, state, caller, request.path_params["referral_id"], purpose,
                                justification, view)


@router.get(
    "/v1/referrals/{referral_id}",
    operation_id="get_referral",
    summary="Read a referral",
    description=(
        "One referral, cut to the most detailed view an agreement in force grants you for the purpose "
        "stated in `X-Purpose` (or the `view` asked for). `X-Granted-View` and `X-Agreement` say which; "
        "the read is logged. `X-Purpose: emergency` reads under an active emergency grant."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=ReferralOut,
    response_model_exclude_unset=True,
    responses=PURPOSE_ERRORS,
)
@lean(_lean_get_referral)
async def get_referral(
    request: Request,
    state: State,
    caller: Caller,
    referral_id: str,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
    view: ViewParam = None,
) -> Any:
    return await _read_referral(request, state, caller, referral_id, purpose, justification, view)


async def _read_referral(
    request: Request, state: AppState, caller: TokenCaller, referral_id: str, purpose: str | None,
    justification: str | None, view: str | None,
) -> Response:
    # On the event loop, not in a worker thread: one snapshot of the loop's own connection
    # answers whether the client is enabled and loads the referral (three statements, no
    # Session), and the log entry is awaited from the committer thread (group commit), so the
    # loop is never held by a commit.  Thread hops cost more than the read itself.
    with state.loop_reads.snapshot() as connection:
        read = snapshot.load_lean(connection, state.engine.dialect, caller.client_id, referral_id)
        principal = caller.confirmed_by(read, connection, state.engine.dialect)
    if state.settings.bench_bare_reads and request.headers.get("X-Bench-Bare") == "1":
        # bench/load.py's baseline: the same read and projection with no purpose, policy or log.
        # The setting is refused in prod (app/config.py), so this never runs there.
        found = read.found()
        document = render_referral(found, found.subject, state.envelope, service.ALL_FIELDS)
        return _referral_response(document, 200, service.etag(found))
    policies, now = state.policies.current, state.clock()
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    async with disclose.denials_logged(state, None, ctx, {"referral_id": referral_id}):
        stated = access.require_purpose(policies, principal, purpose, now.date(), allow_emergency=True)
        if stated == EMERGENCY_PURPOSE:
            referral = read.found()
            with state.read_sessions() as session:
                released, headers = _emergency_read(session, state, principal, referral, ctx)
        else:
            referral = read.found()
            grant = access.referral_grant(policies, principal, referral, stated, view, now.date())
            released = door.referral(ctx, grant, referral, referral.subject, state.envelope)
            headers = _grant_headers(grant)
    return await door.send_async(state, [released], door.one,
                                 headers={"ETag": service.etag(referral), **headers})


def _emergency_read(
    session: Session, state: AppState, principal: Principal, referral: ReferralSnapshot, ctx: disclose.ReadContext,
) -> tuple[door.Released, dict[str, str]]:
    """A read under an active emergency grant: the grant's view only, logged and flagged."""
    from app.emergency import service as emergency

    now = state.clock()
    grant = emergency.active_grant(session, referral.id, principal.agency_id, now)
    if grant is None:
        raise Forbidden(
            "No active emergency grant: ask for one with POST /v1/referrals/{id}/emergency-access.",
            slug="access-denied",
        )
    released = door.emergency(
        ctx, referral, referral.subject, state.envelope, grant_id=grant.id, agreement_id=grant.agreement_id,
        view=grant.view, fields=frozenset(grant.fields), expires_at=grant.expires_at.isoformat(),
    )
    return released, {"X-Granted-View": grant.view, "X-Emergency-Grant": grant.id}


@router.get(
    "/v1/referrals",
    operation_id="list_referrals",
    summary="List referrals",
    description=(
        "The referrals granted to you for the stated purpose, filtered by status, risk level, concern or "
        "change time, a page at a time; every disclosure is logged."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=ReferralPage,
    responses={400: PURPOSE_ERRORS[400]},
)
def list_referrals(
    request: Request,
    session: ReadSession,
    state: State,
    caller: Caller,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
    status_: Annotated[list[str], Query(alias="status", max_length=10)] = [],  # noqa: B006
    risk_level: Annotated[list[str], Query(max_length=10)] = [],  # noqa: B006
    concern: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    updated_since: Annotated[datetime | None, Query(), ISO_TIMESTAMP] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    principal = caller.confirm(session)
    policies, today = state.policies.current, state.clock().date()
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"referrals": "list"}):
        stated = access.require_purpose(policies, principal, purpose, today)
    ctx = disclose.ReadContext(principal, stated, justification, request.state.request_id)
    since = updated_since if updated_since is None or updated_since.tzinfo else updated_since.astimezone()
    f = repository.ReferralFilter(
        statuses=tuple(status_), risk_levels=tuple(risk_level), concerns=tuple(concern), updated_since=since
    )
    page, next_cursor = service.list_page(session, principal, stated, f, cursor, limit, policies, today)
    released = [door.referral(ctx, grant, r, r.subject, state.envelope) for r, grant in page]
    return door.send(state, session, released, door.page(next_cursor))


@router.post(
    "/v1/referrals/{referral_id}/transitions",
    operation_id="transition_referral",
    summary="Move a referral through its lifecycle",
    description=(
        "Changes the status (triage, accept, assign, close, decline, withdraw, transfer) if the "
        "referral's current status allows it and you play the role the transition needs; send the `ETag` "
        "in `If-Match`. The reply shows what `X-Purpose` grants you, else a receipt."
    ),
    openapi_extra={"x-case-data": True,
                   "x-server-side-rules": ["`agencies` (registered agencies) only and always for `assigned`",
                                           "`outcome` only and always for `closed`",
                                           "`reason` for `declined`, `withdrawn` and `transferred`",
                                           "`to_network` only and always for `transferred`, a network the "
                                           "referral may move to"]},
    response_model=ReferralOut,
    response_model_exclude_unset=True,
    responses={
        403: {"description": "The caller may not make this transition"},
        409: {"description": "Not allowed from the current status; names the allowed ones"},
        412: {"description": "If-Match does not match the current ETag"},
    },
)
def transition_referral(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    body: TransitionIn,
    if_match: IfMatch = None,
    idempotency_key: idempotency.IdempotencyKey = None,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
) -> Any:
    key = idempotency.check_key(idempotency_key)
    fingerprint = idempotency.request_hash(
        "POST", f"/v1/referrals/{referral_id}/transitions", body.model_dump(mode="json")
    )
    replay = idempotency.find(session, principal.client_id, key, fingerprint) if key else None
    if replay is not None:
        referral = service.load(session, referral_id)
        return _write_reply(request, session, state, principal, referral, purpose, justification,
                            replay.status_code, replayed=True)
    referral, source = service.transition(
        session, state.policies.current, principal, referral_id, body, if_match, state.clock(),
        crypto=crypto(state), retention=retention(state),
    )
    events = [disclose.change_event(
        principal, EventType.transition, subject_id=referral.subject_id, record_ids={"referral_id": referral.id},
        request_id=request.state.request_id, from_status=source.status, to_status=referral.status,
        agencies=sorted(body.agencies), outcome=body.outcome, fields=["status"],
    )]
    if referral.network_id != source.network_id:
        events.append(service.transfer_event(state.policies.current, principal, referral, source.network_id,
                                             request.state.request_id))
    if key is not None:
        idempotency.remember(session, principal.client_id, key, fingerprint, 200, "referral", referral.id)
    return _write_reply(request, session, state, principal, referral, purpose, justification, 200,
                        events=events)


def _write_reply(
    request: Request, session: Session, state: AppState, principal: Principal, referral: Referral,
    purpose: str | None, justification: str | None, status_code: int, *, replayed: bool = False,
    events: list[AuditEvent] | None = None,
) -> Any:
    """A write's reply shows only what the caller may read, for the purpose it states; else a receipt."""
    policies, today = state.policies.current, state.clock().date()
    headers = {"ETag": service.etag(referral), **({"Idempotent-Replayed": "true"} if replayed else {})}
    grant = service.reply_grant(policies, principal, referral, purpose, today)
    if grant is None:
        disclose.log_reads(state, session, events or [])
        return door.receipt(referral, status_code, headers)
    ctx = disclose.ReadContext(principal, grant.decision_purpose, justification, request.state.request_id)
    released = door.referral(ctx, grant.grant, referral, _subject(session, referral), state.envelope)
    return door.send(state, session, [released], door.one, status_code=status_code,
                     headers={**headers, **_grant_headers(grant.grant)}, extra_events=events or [])


@router.post(
    "/v1/referrals/{referral_id}/consent",
    operation_id="update_consent",
    summary="Record consent",
    description=(
        "Records the person's consent status and legal basis; for the referring agency or the network's "
        "coordinator. Send the `ETag` in `If-Match`."
    ),
    openapi_extra={"x-case-data": True},
    response_model=ReferralOut,
    response_model_exclude_unset=True,
    responses={
        403: {"description": "Only the referring agency or the network's coordinator records consent"},
        412: {"description": "If-Match does not match the current ETag"},
    },
)
def update_consent(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    body: ConsentUpdate,
    if_match: IfMatch = None,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
) -> Any:
    referral = service.update_consent(
        session, state.policies.current, principal, referral_id, body, if_match, state.clock(),
        crypto=crypto(state), retention=retention(state),
    )
    events = [disclose.change_event(
        principal, EventType.change, subject_id=referral.subject_id, record_ids={"referral_id": referral.id},
        request_id=request.state.request_id, fields=["consent"], consent_status=referral.consent_status,
    )]
    return _write_reply(request, session, state, principal, referral, purpose, justification, 200, events=events)


@router.post(
    "/v1/referrals/{referral_id}/assessments",
    operation_id="reassess_referral",
    summary="Re-assess a referral",
    description=(
        "Re-assesses the risk level, concerns, vulnerability and protective factors or intervention type: the "
        "fields given replace the current ones, which agreements' `when` conditions see from then on, and the "
        "history keeps who, when and why (sealed). Who may is the network's protocol (`reassessment_by`, "
        "GET /v1/networks/{id}). Send the `ETag` in `If-Match`. The reply shows what `X-Purpose` grants you, "
        "else a receipt."
    ),
    openapi_extra={"x-case-data": True},
    response_model=ReferralOut,
    response_model_exclude_unset=True,
    responses={
        403: {"description": "Your relation to the referral is not one its network's protocol lets re-assess"},
        412: {"description": "If-Match does not match the current ETag"},
        422: {"description": "No assessed field given, or an unknown code"},
    },
)
def reassess_referral(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    body: AssessmentIn,
    if_match: IfMatch = None,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
) -> Any:
    referral, changed = service.reassess(
        session, state.policies.current, principal, referral_id, body, if_match, state.clock(),
        crypto=crypto(state), retention=retention(state),
    )
    events = [disclose.change_event(
        principal, EventType.change, subject_id=referral.subject_id, record_ids={"referral_id": referral.id},
        request_id=request.state.request_id, fields=["assessments", *changed],
    )]
    return _write_reply(request, session, state, principal, referral, purpose, justification, 200, events=events)


@router.get(
    "/v1/referrals/{referral_id}/assessments",
    operation_id="list_assessments",
    summary="Read a referral's re-assessments",
    description=(
        "Who re-assessed the referral, when, why, and the values after each, oldest first: for a caller whose "
        "agreement grants the field `assessments` (in a view) for the purpose stated in `X-Purpose`. The read "
        "is logged."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=AssessmentPage,
    responses=PURPOSE_ERRORS,
)
def list_assessments(
    request: Request,
    session: ReadSession,
    state: State,
    principal: CurrentPrincipal,
    referral_id: str,
    purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
) -> Any:
    policies, today = state.policies.current, state.clock().date()
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"referral_id": referral_id}):
        stated = access.require_purpose(policies, principal, purpose, today)
        referral = service.load(session, referral_id)
        grant = access.referral_grant(policies, principal, referral, stated, None, today)
        if "assessments" not in grant.fields:
            # The view granted leaves the history out: a denial, logged with the rule that granted less.
            withheld = replace(grant.decision, permit=False, reason_code="no_rule", fields=frozenset(),
                               reason=f"view {grant.decision.view} does not include assessments")
            raise access.AccessDenied(withheld, stated, owner_agency=referral.referring_agency,
                                      subject_id=referral.subject_id)
    ctx = disclose.ReadContext(principal, stated, justification, request.state.request_id)
    document = {"items": service.assessments(session, crypto(state), referral)}
    released = door.record_part(ctx, grant, document, owner_agency=referral.referring_agency,
                                subject_id=referral.subject_id, record_ids={"referral_id": referral.id},
                                fields=["assessments"])
    return door.send(state, session, [released], door.one, headers=_grant_headers(grant))


@router.get(
    "/v1/networks/{network_id}/worklist",
    operation_id="get_worklist",
    summary="The coordinator's work list",
    description=(
        "What the network's protocol says is due: referrals not triaged or not assigned within the deadline "
        "for their urgency, reviews due after closure, and repeat referrals within the repeat window (linked "
        "through the person). For the network's coordinator agency with the coordinator role, for the purpose "
        "stated in `X-Purpose`: each referral listed is one an agreement grants it for that purpose, and the "
        "listing is logged. Ids, statuses and urgencies. Beside them, on the first page, `agreements`: the "
        "agreements in force deciding the network whose `review_by` comes within 60 days "
        "(`agreement_review_60`) or 30 days (`agreement_review_30`); no case data."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=Worklist,
    responses={400: PURPOSE_ERRORS[400], 403: {"description": "Not the network's coordinator"},
               404: {"description": "No such network"}},
)
def get_worklist(
    request: Request,
    session: ReadSession,
    state: State,
    principal: CurrentPrincipal,
    network_id: str,
    purpose: access.PurposeHeader = None,
    kind: Annotated[WorklistKind | None, Query(description="Only items of this kind.")] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = MAX_LIMIT,
) -> Any:
    policies, now = state.policies.current, state.clock()
    after = _worklist_position(cursor)
    ctx = disclose.ReadContext(principal, purpose or "", None, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"network": network_id}):
        access.refuse_admin(principal)
        network = policies.network(network_id)
        if network is None:
            raise NotFound(f"No network {network_id!r} on this deployment.")
        coordinator = access.is_coordinator(policies, principal, network_id)
        if not (coordinator and access.in_force_party(policies, principal.agency_id, network_id, now.date())):
            lapsed = access.not_in_force(policies, principal.agency_id, now.date(), network_id=network_id)
            if coordinator and lapsed:
                raise Forbidden(f"The work list of network {network_id!r}: {lapsed[0].reason}.",
                                slug=lapsed[0].slug, **lapsed[0].extensions)
            raise Forbidden("The work list is for the network's coordinator agency, with the coordinator role.",
                            slug="access-denied")
        stated = access.require_purpose(policies, principal, purpose, now.date())
    ctx = disclose.ReadContext(principal, stated, None, request.state.request_id)
    agreements = [] if after is not None else [
        r.to_dict() for r in worklist.agreement_reviews(policies, network_id, now.date(), kind)]
    found = [] if kind in worklist.AGREEMENT_HORIZONS else [
        i for i in worklist.items(session, network_id, network.protocol, now, kind)
        if after is None or _worklist_key(i) > after]
    released: list[door.Released] = []
    last: worklist.Item | None = None
    # A page at a time, in the list's order (the longest overdue first): the referrals of a chunk are
    # read, each item is decided for the purpose, and only what is granted is listed and logged.
    position = 0
    while position < len(found) and len(released) < limit:
        chunk = found[position:position + 2 * limit]
        position += len(chunk)
        named = {i.referral_id for i in chunk} | {i.earlier for i in chunk if i.earlier}
        referrals = {r.id: r for r in snapshot.load_where(session, Referral.id.in_(named), [Referral.id],
                                                          len(named))}

        def grant(referral_id: str | None, referrals: dict[str, Any] = referrals) -> access.Grant | None:
            referral = referrals.get(referral_id or "")
            if referral is None:
                return None
            decision = access.decide_referral(policies, principal, referral, stated, None, now.date())
            if not decision.permit or not {"status", "urgency"} <= decision.fields:
                return None
            return access.grant_for(decision, principal, referral.referring_agency, stated)

        for item in chunk:
            last = item
            listed = grant(item.referral_id)
            if listed is None:
                continue
            shown = item if item.earlier is None or grant(item.earlier) is not None else item.without_earlier()
            referral = referrals[item.referral_id]
            linked = {"linked_referral_ids": [shown.earlier]} if shown.earlier else {}
            released.append(door.record_part(
                ctx, listed, shown.to_dict(), owner_agency=referral.referring_agency,
                subject_id=referral.subject_id, record_ids={"referral_id": referral.id, **linked},
                fields=["status", "urgency"],
            ))
            if len(released) == limit:
                break
    more = last is not None and last is not found[-1]
    next_cursor = encode_cursor(dict(zip(("due_since", "referral_id", "kind"), _worklist_key(last), strict=True))) \
        if more and last is not None else None
    return door.send(state, session, released, lambda items: {
        "network": network_id, "items": items, "agreements": agreements, "next_cursor": next_cursor})


def _worklist_key(item: worklist.Item) -> tuple[str, str, str]:
    return item.due_since.isoformat(), item.referral_id, item.kind


def _worklist_position(cursor: str | None) -> tuple[str, str, str] | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    key = (position.get("due_since"), position.get("referral_id"), position.get("kind"))
    if not all(isinstance(part, str) for part in key):
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor")
    return key  # type: ignore[return-value]

@router.get(
    "/v1/events",
    operation_id="list_events",
    summary="Follow the change feed",
    description=(
        "Status changes and emergency-access notices of the referrals granted to you for the stated "
        "purpose, oldest first; resume with `after`."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=EventPage,
    responses={400: PURPOSE_ERRORS[400]},
)
def list_events(
    request: Request,
    session: DbSession,
    state: State,
    principal: CurrentPrincipal,
    purpose: access.PurposeHeader = None,
    after: Annotated[str | None, Query(max_length=512, description="next_cursor of the last page.")] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    policies, today = state.policies.current, state.clock().date()
    ctx = disclose.ReadContext(principal, purpose or "", None, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"events": "feed"}):
        stated = access.require_purpose(policies, principal, purpose, today)
    ctx = disclose.ReadContext(principal, stated, None, request.state.request_id)
    rows, next_cursor = service.events_page(session, principal, stated, after, limit, policies, today)
    by_referral: dict[str, list[tuple[Any, access.Grant]]] = {}
    for row, grant in rows:
        by_referral.setdefault(row.referral_id, []).append((row, grant))
    released = []
    for referral_id, group in by_referral.items():
        referral = service.load(session, referral_id)
        grant = group[-1][1]
        items = [
            (emergency_feed.item(r) if isinstance(r, EmergencyNotice) else
             clock_feed.item(r) if isinstance(r, ClockNotice) else
             EventOut(id=str(r.id), referral_id=r.referral_id, status=r.to_status, at=r.at,
                      # Who moved it, and from where, is the status history: only with that field.
                      from_status=r.from_status if "status_history" in g.fields else None,
                      by_agency=r.by_agency if "status_history" in g.fields else None,
                      outcome=r.outcome if "outcome" in g.fields else None)).model_dump(mode="json")
            for r, g in group
        ]
        released.append(door.record_part(
            ctx, grant, {"items": items}, owner_agency=referral.referring_agency, subject_id=referral.subject_id,
            record_ids={"referral_id": referral_id,
                        "event_ids": [r.id for r, _ in group
                                      if not emergency_feed.is_notice(r) and not clock_feed.is_clock(r)],
                        **clock_feed.refs([r for r, _ in group]),
                        **emergency_feed.refs([r for r, _ in group])},
            fields=sorted({"status", "outcome", "status_history"} & grant.fields),
        ))
    # The service's order: status changes and emergency entries merged by time.
    order = {clock_feed.feed_id(r) if isinstance(r, ClockNotice) else emergency_feed.feed_id(r): n
             for n, (r, _) in enumerate(rows)}

    def feed(documents: list[dict[str, Any]]) -> dict[str, Any]:
        items = sorted((i for d in documents for i in d["items"]), key=lambda i: order[i["id"]])
        return {"items": items, "next_cursor": next_cursor}

    return door.send(state, session, released, feed)
