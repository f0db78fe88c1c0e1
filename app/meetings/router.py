"""HTTP for the case conference: meetings and their agendas, minutes, the items' referrals, actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access, disclose, door
from app.audit.events import AuditEvent, EventType
from app.auth.principal import CurrentPrincipal, Principal
from app.errors import BadRequest, Forbidden, Gone
from app.meetings import actions, service
from app.meetings.models import AgendaItem, CaseAction, Meeting
from app.meetings.schemas import (
    ActionIn,
    ActionPage,
    ActionReceipt,
    ActionStatusIn,
    AgendaItemIn,
    AgendaItemPatch,
    MeetingIn,
    MeetingOut,
    MeetingPage,
    MeetingReceipt,
    MinutesIn,
    MinutesPage,
    MinutesReceipt,
)
from app.pagination import DEFAULT_LIMIT, Limit
from app.referrals import service as referrals
from app.referrals.router import PURPOSE_ERRORS, IfMatch, _grant_headers, _subject, crypto, retention
from app.referrals.schemas import ReferralOut
from app.state import AppState, DbSession, ReadSession, State

router = APIRouter(tags=["meetings"])
Number = Annotated[int, Path(ge=1, le=10_000, description="The agenda item's number.")]
CHAIR_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not the network's chair (its chair agency, with the coordinator role)"},
    404: {"description": "No such meeting, or no such item"},
    409: {"description": "The meeting is closed (its agenda is read-only)"},
}
MEETING_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "X-Purpose missing, not open to the caller, or not `case_conference`"},
    403: {"description": "Neither the chair nor invited to any item (or to this item)"},
    404: {"description": "No such meeting, or no such item"},
}


def _conference(policies: Any, principal: Principal, purpose: str | None, now: datetime) -> str:
    stated = access.require_purpose(policies, principal, purpose, now.date())
    if stated != service.CONFERENCE:
        raise BadRequest(f"Meetings are read for the purpose {service.CONFERENCE!r}.", slug="purpose-unknown",
                         purposes=[service.CONFERENCE])
    return stated


def _released_meeting(
    request: Request, session: Session, state: AppState, principal: Principal, meeting: Meeting, stated: str,
    justification: str | None,
) -> tuple[list[door.Released], dict[str, Any]]:
    """The meeting and the items the caller sits at, each decided for `case_conference` and logged."""
    policies, now = state.policies.current, state.clock()
    network = service.network_of(policies, meeting.network_id)
    items = service.visible_items(policies, principal, network, service.items_of(session, meeting), now)
    ctx = disclose.ReadContext(principal, stated, justification, request.state.request_id)
    released = []
    for item in items:
        referral = referrals.load(session, item.referral_id)
        decision = access.decide_referral(policies, principal, referral, stated, None, now.date(),
                                          invited=meeting.status == "scheduled")
        if not decision.permit:
            continue  # nothing of a referral its agreements do not grant for the conference
        grant = access.grant_for(decision, principal, referral.referring_agency, stated)
        released.append(door.record_part(
            ctx, grant, service.item_document(item), owner_agency=referral.referring_agency,
            subject_id=referral.subject_id,
            record_ids={"referral_id": referral.id, "meeting_id": meeting.id, "number": item.number},
            fields=["agenda_item"],
        ))
    return released, service.meeting_document(meeting, network, [])


def _stated(state: AppState, principal: Principal, purpose: str | None) -> str | None:
    """A write's reply purpose, checked before the write: none (a receipt), or `case_conference`."""
    return None if purpose is None else _conference(state.policies.current, principal, purpose, state.clock())


def _meeting_reply(
    request: Request, session: Session, state: AppState, principal: Principal, meeting: Meeting,
    purpose: str | None, justification: str | None, status_code: int, events: list[AuditEvent],
) -> Response:
    """A meeting write's reply: the meeting as a read for `case_conference` states it, else a receipt."""
    headers = {"ETag": service.etag(meeting)}
    if purpose is None:
        disclose.log_reads(state, session, events)
        return door.receipt(meeting, status_code, headers)
    released, document = _released_meeting(request, session, state, principal, meeting, purpose, justification)
    return door.send(state, session, released, lambda items: {**document, "agenda": items},
                     status_code=status_code, headers=headers, extra_events=events)


def _change(principal: Principal, request: Request, meeting: Meeting, **extra: Any) -> AuditEvent:
    return disclose.change_event(principal, EventType.change, subject_id=None,
                                 record_ids={"meeting_id": meeting.id, "network": meeting.network_id},
                                 request_id=request.state.request_id, **extra)


def _item_change(principal: Principal, request: Request, meeting: Meeting, item: AgendaItem, subject_id: str,
                 fields: list[str], **extra: Any) -> AuditEvent:
    return disclose.change_event(
        principal, EventType.change, subject_id=subject_id,
        record_ids={"meeting_id": meeting.id, "number": item.number, "referral_id": item.referral_id},
        request_id=request.state.request_id, fields=fields, **extra)


def _subject_of(session: Session, referral_id: str) -> str:
    return referrals.load(session, referral_id).subject_id


MEETING_WRITE = {"x-case-data": True}


@router.post(
    "/v1/networks/{network_id}/meetings",
    operation_id="schedule_meeting",
    summary="Schedule a meeting",
    description=(
        "The network's chair schedules a case conference (or an emergency one). A regular meeting's agenda is "
        "proposed from the network's state: overdue triage and assignment, referrals triaged and never yet "
        "discussed, repeat referrals, reviews due after closure, referrals with open actions; each item invites "
        "the agencies already party to the case. Items given are added first. With `X-Purpose: case_conference` "
        "the reply shows the agenda (each item logged); without, a receipt."
    ),
    status_code=status.HTTP_201_CREATED,
    openapi_extra=MEETING_WRITE,
    response_model=MeetingOut | MeetingReceipt,
    responses={**CHAIR_ERRORS, 404: {"description": "No such network"},
               422: {"description": "Scheduled in the past, a referral outside the network, a non-member invited"}},
)
def schedule_meeting(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, network_id: str,
    body: MeetingIn, purpose: access.PurposeHeader = None, justification: access.JustificationHeader = None,
) -> Any:
    policies, now = state.policies.current, state.clock()
    purpose = _stated(state, principal, purpose)
    meeting = service.schedule(session, policies, principal, network_id, body, now)
    events = [_change(principal, request, meeting, kind=meeting.kind, fields=["meeting"])]
    events += [_item_change(principal, request, meeting, item, _subject_of(session, item.referral_id),
                            ["agenda_item"], invited=item.invited, reason=item.reason)
               for item in service.items_of(session, meeting)]
    return _meeting_reply(request, session, state, principal, meeting, purpose, justification, 201, events)


@router.get(
    "/v1/networks/{network_id}/meetings",
    operation_id="list_meetings",
    summary="List a network's meetings",
    description=(
        "When and what kind, and whether closed: every meeting for the network's chair, else the meetings your "
        "agency is invited to an item of. No agenda, nothing of the cases."
    ),
    response_model=MeetingPage,
    responses={403: {"description": "Not a party to an agreement in force of the network"},
               404: {"description": "No such network"}},
)
def list_meetings(
    session: ReadSession, state: State, principal: CurrentPrincipal, network_id: str,
    after: Annotated[datetime | None, Query(description="Only meetings scheduled after this time.")] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    policies, now = state.policies.current, state.clock()
    access.refuse_admin(principal)
    network = service.network_of(policies, network_id)
    if not access.in_force_party(policies, principal.agency_id, network.id, now.date()):
        raise Forbidden(f"Your agency is not a party to an agreement in force of network {network.id!r}.",
                               slug="access-denied")
    query = select(Meeting).where(Meeting.network_id == network.id)
    if after is not None:
        query = query.where(Meeting.scheduled_for > after)
    if not service.is_chair(policies, principal, network, now):
        invited = (select(AgendaItem.meeting_id, AgendaItem.invited)
                   .join(Meeting, Meeting.id == AgendaItem.meeting_id).where(Meeting.network_id == network.id))
        mine = {mid for mid, agencies in session.execute(invited) if principal.agency_id in agencies}
        query = query.where(Meeting.id.in_(sorted(mine)))
    rows = session.scalars(query.order_by(Meeting.scheduled_for, Meeting.id).limit(limit)).all()
    return {"items": [{"id": m.id, "network": m.network_id, "kind": m.kind, "scheduled_for": m.scheduled_for,
                       "status": m.status} for m in rows]}


@router.get(
    "/v1/meetings/{meeting_id}",
    operation_id="get_meeting",
    summary="Read a meeting and its agenda",
    description=(
        "For `X-Purpose: case_conference`. The chair sees every item; an invited agency only the items it is "
        "invited to, and of those only the ones its agreements grant it for the conference. Each item listed is "
        "logged against its referral."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=MeetingOut,
    responses=MEETING_READ_ERRORS,
)
def get_meeting(
    request: Request, session: ReadSession, state: State, principal: CurrentPrincipal, meeting_id: str,
    purpose: access.PurposeHeader = None, justification: access.JustificationHeader = None,
) -> Any:
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"meeting_id": meeting_id}):
        stated = _conference(state.policies.current, principal, purpose, state.clock())
        meeting = service.load(session, meeting_id)
        released, document = _released_meeting(request, session, state, principal, meeting, stated, justification)
    return door.send(state, session, released, lambda items: {**document, "agenda": items},
                     headers={"ETag": service.etag(meeting)})


@router.post(
    "/v1/meetings/{meeting_id}/items",
    operation_id="add_agenda_item",
    summary="Add an item to the agenda",
    description="The chair adds a referral of the meeting's network, with the agencies invited to it.",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=MEETING_WRITE,
    response_model=MeetingOut | MeetingReceipt,
    responses={**CHAIR_ERRORS, 409: {"description": "Closed, or the referral is on the agenda already"},
               422: {"description": "A referral outside the network, or a non-member invited"}},
)
def add_agenda_item(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, meeting_id: str,
    body: AgendaItemIn, purpose: access.PurposeHeader = None, justification: access.JustificationHeader = None,
) -> Any:
    purpose = _stated(state, principal, purpose)
    meeting, item = service.add_item(session, state.policies.current, principal, meeting_id, body, state.clock())
    events = [_item_change(principal, request, meeting, item, _subject_of(session, item.referral_id),
                           ["agenda_item"], invited=item.invited, reason=item.reason)]
    return _meeting_reply(request, session, state, principal, meeting, purpose, justification, 201, events)


@router.patch(
    "/v1/meetings/{meeting_id}/items/{number}",
    operation_id="edit_agenda_item",
    summary="Change an item's invitations or record its attendance",
    description="The chair replaces the agencies invited to the item, or records which attended (each invited).",
    openapi_extra=MEETING_WRITE,
    response_model=MeetingOut | MeetingReceipt,
    responses={**CHAIR_ERRORS, 422: {"description": "A non-member invited, or an attendee not invited"}},
)
def edit_agenda_item(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, meeting_id: str,
    number: Number, body: AgendaItemPatch, purpose: access.PurposeHeader = None,
    justification: access.JustificationHeader = None,
) -> Any:
    purpose = _stated(state, principal, purpose)
    meeting, item = service.edit_item(session, state.policies.current, principal, meeting_id, number, body,
                                      state.clock())
    changed = [name for name in ("invited", "attended") if getattr(body, name) is not None]
    events = [_item_change(principal, request, meeting, item, _subject_of(session, item.referral_id), changed,
                           invited=item.invited, attended=item.attended)]
    return _meeting_reply(request, session, state, principal, meeting, purpose, justification, 200, events)


@router.delete(
    "/v1/meetings/{meeting_id}/items/{number}",
    operation_id="remove_agenda_item",
    summary="Take an item off the agenda",
    description="The chair removes an item that has no minutes yet; the other items keep their numbers.",
    response_model=MeetingReceipt,
    responses={**CHAIR_ERRORS, 409: {"description": "Closed, or the item has minutes"}},
)
def remove_agenda_item(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, meeting_id: str,
    number: Number,
) -> Any:
    meeting, item = service.remove_item(session, state.policies.current, principal, meeting_id, number,
                                        state.clock())
    event = _item_change(principal, request, meeting, item, _subject_of(session, item.referral_id),
                         ["agenda_item"], removed=True)
    disclose.log_reads(state, session, [event])
    return door.receipt(meeting, 200, {"ETag": service.etag(meeting)})


@router.post(
    "/v1/meetings/{meeting_id}/items/{number}/minutes",
    operation_id="record_minutes",
    summary="Record an item's minutes and decision",
    description=(
        "The chair appends the item's minutes (sealed under the person's data key) and, once, the panel's "
        "decision. `accept`, `decline`, `assign`, `close` and `refer_on` move the referral by the ordinary "
        "transition rules; `continue_support` and `escalate` record the decision. Once the meeting is closed an "
        "entry is a correction and takes no decision."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=MinutesReceipt,
    responses={**CHAIR_ERRORS,
               409: {"description": "Decided already, a decision not allowed for the referral's status, or a "
                                    "decision after the meeting closed"},
               422: {"description": "Agencies or outcome missing or out of place for the decision"}},
)
def record_minutes(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, meeting_id: str,
    number: Number, body: MinutesIn,
) -> Any:
    minuted = service.record_minutes(
        session, state.policies.current, principal, meeting_id, number, body, state.clock(),
        crypto=crypto(state), retention=retention(state))
    meeting, item, entry, moved = minuted.meeting, minuted.item, minuted.entry, minuted.moved
    subject_id = minuted.referral.subject_id
    events = [_item_change(principal, request, meeting, item, subject_id, ["minutes"], kind=entry.kind,
                           decision=entry.decision)]
    if moved is not None:
        events.append(disclose.change_event(
            principal, EventType.transition, subject_id=subject_id, record_ids={"referral_id": moved.id},
            request_id=request.state.request_id, from_status=minuted.moved_from, to_status=moved.status,
            agencies=sorted(body.agencies), outcome=moved.outcome, fields=["status"], meeting_id=meeting.id))
    disclose.log_reads(state, session, events)
    return {"id": entry.id, "meeting_id": meeting.id, "number": number, "kind": entry.kind,
            "decision": entry.decision, "at": entry.at}


@router.post(
    "/v1/meetings/{meeting_id}/close",
    operation_id="close_meeting",
    summary="Close a meeting",
    description="The chair closes the meeting: its agenda and decisions are final; minutes take corrections.",
    response_model=MeetingReceipt,
    responses=CHAIR_ERRORS,
)
def close_meeting(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, meeting_id: str,
) -> Any:
    meeting = service.close(session, state.policies.current, principal, meeting_id, state.clock())
    disclose.log_reads(state, session, [_change(principal, request, meeting, fields=["status"], status="closed")])
    return door.receipt(meeting, 200, {"ETag": service.etag(meeting)})


@router.get(
    "/v1/meetings/{meeting_id}/items/{number}/referral",
    operation_id="get_agenda_referral",
    summary="Read an agenda item's referral",
    description=(
        "For the chair and the agencies invited to the item, for `X-Purpose: case_conference`: the referral as "
        "your agreements grant it for the conference, with the record attribute `invited` true while the meeting "
        "is open (`when: {invited: true}`). Logged like any read."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=ReferralOut,
    response_model_exclude_unset=True,
    responses=MEETING_READ_ERRORS,
)
def get_agenda_referral(
    request: Request, session: ReadSession, state: State, principal: CurrentPrincipal, meeting_id: str,
    number: Number, purpose: access.PurposeHeader = None, justification: access.JustificationHeader = None,
    view: Annotated[str | None, Query(max_length=64, description="Ask for a named view.")] = None,
) -> Any:
    policies, now = state.policies.current, state.clock()
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"meeting_id": meeting_id, "number": number}):
        stated = _conference(policies, principal, purpose, now)
        meeting = service.load(session, meeting_id)
        network = service.network_of(policies, meeting.network_id)
        item = service.item_of(session, meeting, number)
        if not service.sits_at(policies, principal, network, item, now):
            raise Forbidden("Your agency is not invited to this item.", slug="access-denied")
        referral = referrals.load(session, item.referral_id)
        grant = access.referral_grant(policies, principal, referral, stated, view, now.date(),
                                      invited=meeting.status == "scheduled")
    ctx = disclose.ReadContext(principal, stated, justification, request.state.request_id)
    released = door.referral(ctx, grant, referral, _subject(session, referral), state.envelope,
                             extra={"meeting_id": meeting.id, "number": number})
    return door.send(state, session, [released], door.one,
                     headers={"ETag": referrals.etag(referral), **_grant_headers(grant)})


@router.get(
    "/v1/referrals/{referral_id}/minutes",
    operation_id="list_minutes",
    summary="Read a referral's case-conference minutes",
    description=(
        "Every agenda item the referral was on, with attendance, decision and minutes (corrections included), "
        "oldest meeting first: for a caller whose agreement grants the field `minutes` for the purpose stated."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=MinutesPage,
    responses=PURPOSE_ERRORS,
)
def list_minutes(
    request: Request, session: ReadSession, state: State, principal: CurrentPrincipal, referral_id: str,
    purpose: access.PurposeHeader = None, justification: access.JustificationHeader = None,
) -> Any:
    referral, grant, ctx = _history_read(request, session, state, principal, referral_id, purpose, justification,
                                         "minutes")
    document = {"items": service.minutes_of(session, crypto(state), referral)}
    return _history_reply(state, session, ctx, grant, referral, document, "minutes", {"referral_id": referral.id})


def _history_read(
    request: Request, session: Session, state: AppState, principal: Principal, referral_id: str,
    purpose: str | None, justification: str | None, field: str, *, own_part: bool = False,
) -> tuple[Any, access.Grant, disclose.ReadContext]:
    """A purpose-bound read of one of a referral's histories (`minutes`, `actions`): the field granted,
    or (``own_part``) any grant of the referral at all; else a logged denial."""
    policies, today = state.policies.current, state.clock().date()
    ctx = disclose.ReadContext(principal, purpose or "", justification, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"referral_id": referral_id}):
        stated = access.require_purpose(policies, principal, purpose, today)
        referral = referrals.load(session, referral_id)
        grant = access.referral_grant(policies, principal, referral, stated, None, today)
        if field not in grant.fields and not own_part:
            # The view granted leaves the history out: a denial, logged with the rule that granted less.
            withheld = replace(grant.decision, permit=False, reason_code="no_rule", fields=frozenset(),
                               reason=f"view {grant.decision.view} does not include {field}")
            raise access.AccessDenied(withheld, stated, owner_agency=referral.referring_agency,
                                      subject_id=referral.subject_id)
    return referral, grant, disclose.ReadContext(principal, stated, justification, request.state.request_id)


def _history_reply(
    state: AppState, session: Session, ctx: disclose.ReadContext, grant: access.Grant, referral: Any,
    document: dict[str, Any], field: str, record_ids: dict[str, Any],
) -> Any:
    """A referral's history (minutes, actions) through the door, logged as the field it is."""
    released = door.record_part(ctx, grant, document, owner_agency=referral.referring_agency,
                                subject_id=referral.subject_id, record_ids=record_ids, fields=[field])
    return door.send(state, session, [released], door.one, headers=_grant_headers(grant))


@router.post(
    "/v1/referrals/{referral_id}/actions",
    operation_id="create_action",
    summary="Set an action on a referral",
    description=(
        "The network's chair, the referring agency or an assigned agency sets an action: what (sealed), which "
        "member agency owns it, by when, and optionally the meeting item that decided it. The reply is a receipt."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=ActionReceipt,
    responses={403: {"description": "Not the chair, the referrer or an assigned agency"},
               404: {"description": "No such referral"},
               422: {"description": "Owner not a member, due date in the past, or an item of another referral"}},
)
def create_action(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, referral_id: str,
    body: ActionIn,
) -> Any:
    action = actions.create(session, state.policies.current, principal, referral_id, body, state.clock(),
                            crypto=crypto(state))
    referral = referrals.load(session, referral_id)
    disclose.log_reads(state, session, [disclose.change_event(
        principal, EventType.create, subject_id=referral.subject_id,
        record_ids={"referral_id": referral.id, "action_id": action.id}, request_id=request.state.request_id,
        fields=["actions"], owner_agency=action.owner_agency, due_on=action.due_on.isoformat())])
    return _action_receipt(action, 201)


@router.post(
    "/v1/actions/{action_id}/status",
    operation_id="update_action",
    summary="Complete, cancel or reopen an action",
    description=(
        "Its owner agency or the network's chair sets one of the protocol's action statuses (cancelling is the "
        "chair's), with an optional completion note (sealed). Send the `ETag` in `If-Match`."
    ),
    response_model=ActionReceipt,
    responses={403: {"description": "Not the owner agency or the chair"}, 404: {"description": "No such action"},
               412: {"description": "If-Match does not match the current ETag"},
               422: {"description": "Not one of the protocol's action statuses"}},
)
def update_action(
    request: Request, session: DbSession, state: State, principal: CurrentPrincipal, action_id: str,
    body: ActionStatusIn, if_match: IfMatch = None,
) -> Any:
    action, referral = actions.set_status(session, state.policies.current, principal, action_id, body, if_match,
                                          state.clock(), crypto=crypto(state))
    disclose.log_reads(state, session, [disclose.change_event(
        principal, EventType.change, subject_id=referral.subject_id,
        record_ids={"referral_id": referral.id, "action_id": action.id}, request_id=request.state.request_id,
        fields=["actions"], status=action.status)])
    return _action_receipt(action, 200)


def _action_receipt(action: CaseAction, status_code: int) -> JSONResponse:
    """What a write of an action answers: its references, owner, due date and status; never its text."""
    return JSONResponse({"id": action.id, "referral_id": action.referral_id, "owner_agency": action.owner_agency,
                         "due_on": action.due_on.isoformat(), "status": action.status}, status_code=status_code,
                        headers={"ETag": actions.etag(action)})


@router.get(
    "/v1/referrals/{referral_id}/actions",
    operation_id="list_referral_actions",
    summary="Read a referral's actions",
    description=(
        "For the purpose stated: every action when your agreement grants the field `actions`; else, if the "
        "referral is granted to you at all, the actions your agency owns. `overdue`: open past its due date."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=ActionPage,
    responses=PURPOSE_ERRORS,
)
def list_referral_actions(
    request: Request, session: ReadSession, state: State, principal: CurrentPrincipal, referral_id: str,
    purpose: access.PurposeHeader = None, justification: access.JustificationHeader = None,
) -> Any:
    referral, grant, ctx = _history_read(request, session, state, principal, referral_id, purpose, justification,
                                         "actions", own_part=True)
    owner = None if "actions" in grant.fields else principal.agency_id
    rows = actions.of_referral(session, referral.id, owner)
    document = {"items": actions.documents(session, crypto(state), rows, state.clock().date())}
    return _history_reply(state, session, ctx, grant, referral, document, "actions",
                          {"referral_id": referral.id, "action_ids": [a.id for a in rows]})


@router.get(
    "/v1/actions",
    operation_id="list_my_actions",
    summary="Your agency's actions",
    description=(
        "The actions your agency owns, the earliest due first: `due` (open, overdue included; the default), "
        "`overdue`, or `all`. Only those on referrals granted to you for the purpose stated; each logged."
    ),
    openapi_extra={"x-case-data": True, "x-purpose-required": True},
    response_model=ActionPage,
    responses={400: PURPOSE_ERRORS[400]},
)
def list_my_actions(
    request: Request, session: ReadSession, state: State, principal: CurrentPrincipal,
    purpose: access.PurposeHeader = None,
    state_filter: Annotated[Literal["due", "overdue", "all"], Query(alias="state")] = "due",
    limit: Limit = DEFAULT_LIMIT,
) -> Any:
    policies, today = state.policies.current, state.clock().date()
    ctx = disclose.ReadContext(principal, purpose or "", None, request.state.request_id)
    with disclose.denials_logged(state, session, ctx, {"actions": "owned"}):
        stated = access.require_purpose(policies, principal, purpose, today)
    ctx = disclose.ReadContext(principal, stated, None, request.state.request_id)
    rows = actions.owned_by(session, principal.agency_id, state_filter, today, limit)
    released = []
    by_referral: dict[str, list[Any]] = {}
    for action in rows:
        by_referral.setdefault(action.referral_id, []).append(action)
    for referral_id, owned in by_referral.items():
        try:
            referral = referrals.load(session, referral_id)
        except Gone:  # purged or erased, its rows not yet removed: nothing to show
            continue
        decision = access.decide_referral(policies, principal, referral, stated, None, today)
        if not decision.permit:
            continue
        grant = access.grant_for(decision, principal, referral.referring_agency, stated)
        released.append(door.record_part(
            ctx, grant, {"items": actions.documents(session, crypto(state), owned, today)},
            owner_agency=referral.referring_agency, subject_id=referral.subject_id,
            record_ids={"referral_id": referral.id, "action_ids": [a.id for a in owned]}, fields=["actions"]))

    def page(documents: list[dict[str, Any]]) -> dict[str, Any]:
        found = [item for d in documents for item in d["items"]]
        return {"items": sorted(found, key=lambda a: (a["due_on"], a["id"]))}

    return door.send(state, session, released, page)
