"""Actions: what a referral's panel asked of an agency, by when, and how it ended.

An action belongs to a referral (and, when a meeting's item created it, to that item). Its
description and completion note are sealed under the person's data key. Its status is one of
the network protocol's action statuses; `overdue` is the clock's, never stored: open past its
due date. Open actions roll onto the next meeting's agenda (app/meetings/service.py `propose`).

Who may: the network's chair, the referring agency or an assigned agency sets an action; its
owner agency or the chair changes its status. Reading is decided like any read of the
referral: the field `actions` shows them all; without it, an agency the referral is granted
to sees the actions it owns.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.errors import InvalidInput, NotFound, PreconditionFailed
from app.meetings import service as meetings
from app.meetings.models import AgendaItem, CaseAction, Meeting
from app.meetings.schemas import ActionIn, ActionStatusIn
from app.policy.policy_set import PolicySet
from app.referrals import sealed
from app.referrals import service as referrals
from app.referrals.models import Referral
from app.subjects.models import Subject

DESCRIPTION = "action.description"
COMPLETION_NOTE = "action.completion_note"
SETTING = frozenset({"coordinator", "owner", "referrer", "assigned"})


def new_action_id() -> str:
    return "act_" + secrets.token_urlsafe(12)


def context(field: str, referral_id: str, action_id: str) -> str:
    return f"{field}:{referral_id}:{action_id}"


def shown_status(action: CaseAction, today: date) -> str:
    return "overdue" if action.status == "open" and action.due_on < today else action.status


def etag(action: CaseAction) -> str:
    return f'"{action.id}.v{action.version}"'


def create(
    session: Session, policies: PolicySet, principal: Principal, referral_id: str, data: ActionIn, now: datetime,
    *, crypto: referrals.Crypto,
) -> CaseAction:
    referral = referrals.load(session, referral_id, for_update=True)
    access.authorize_change(policies, principal, referral, now.date(), action="Setting an action", needs=SETTING)
    network = meetings.network_of(policies, referral.network_id)
    errors: list[dict[str, Any]] = []
    if data.owner_agency not in network.members or not access.in_force_party(
        policies, data.owner_agency, network.id, now.date()
    ):
        errors.append({"path": "$.owner_agency", "type": "not_a_member",
                       "message": f"not a member of network {network.id!r} under an agreement in force"})
    if data.due_on < now.date():
        errors.append({"path": "$.due_on", "type": "past", "message": "an action is due today or later"})
    item_id = None
    if (data.meeting_id is None) != (data.number is None):
        errors.append({"path": "$.number", "type": "missing", "message": "meeting_id and number go together"})
    elif data.meeting_id is not None:
        item = session.scalars(
            select(AgendaItem).join(Meeting, Meeting.id == AgendaItem.meeting_id)
            .where(Meeting.id == data.meeting_id, Meeting.network_id == referral.network_id,
                   AgendaItem.number == data.number, AgendaItem.referral_id == referral.id)
        ).first()
        if item is None:
            errors.append({"path": "$.meeting_id", "type": "unknown_item",
                           "message": "no item of a meeting of this referral's network discusses this referral"})
        else:
            item_id = item.id
    if errors:
        raise InvalidInput(f"{errors[0]['path']}: {errors[0]['message']}.", errors=errors)
    action = CaseAction(
        id=new_action_id(), referral_id=referral.id, network_id=referral.network_id, item_id=item_id,
        owner_agency=data.owner_agency, due_on=data.due_on, status="open", created_by_agency=principal.agency_id,
        created_by_client=principal.client_id, created_at=now, updated_at=now, version=1,
    )
    key = meetings.data_key(session, crypto, referral)
    action.description = sealed.seal(key, data.description, context(DESCRIPTION, referral.id, action.id))
    session.add(action)
    session.flush()
    return action


def set_status(
    session: Session, policies: PolicySet, principal: Principal, action_id: str, data: ActionStatusIn,
    if_match: str | None, now: datetime, *, crypto: referrals.Crypto,
) -> tuple[CaseAction, Referral]:
    access.refuse_admin(principal)
    action = session.scalars(select(CaseAction).where(CaseAction.id == action_id).with_for_update()).first()
    if action is None:
        raise NotFound("No such action.")
    referral = referrals.load(session, action.referral_id)
    network = meetings.network_of(policies, action.network_id)
    chair = meetings.is_chair(policies, principal, network, now)
    owner = principal.agency_id == action.owner_agency and access.in_force_party(
        policies, principal.agency_id, network.id, now.date())
    if not (chair or owner):
        raise access.ChangeDenied(
            "An action's status is changed by its owner agency or the network's chair.",
            owner_agency=referral.referring_agency, subject_id=referral.subject_id, network=network.id,
        )
    statuses = network.protocol.action_statuses
    if data.status not in statuses:
        raise InvalidInput("$.status: not one of the network's action statuses.",
                           errors=[{"path": "$.status", "type": "unknown_code", "message": "unknown status",
                                    "valid_codes": list(statuses)}])
    if data.status == "cancelled" and not chair:
        raise access.ChangeDenied("Cancelling an action is for the network's chair.",
                                  owner_agency=referral.referring_agency, subject_id=referral.subject_id,
                                  network=network.id)
    if if_match is not None and if_match.strip() not in (etag(action), "*"):
        raise PreconditionFailed("The action changed since you read it; read it again and retry.", etag=etag(action))
    action.status = data.status
    if data.note is not None:
        key = meetings.data_key(session, crypto, referral)
        action.completion_note = sealed.seal(key, data.note, context(COMPLETION_NOTE, referral.id, action.id))
    action.version += 1
    action.updated_at = now
    session.flush()
    return action, referral


def documents(session: Session, crypto: referrals.Crypto, rows: list[CaseAction], today: date) -> list[dict[str, Any]]:
    """Actions with their sealed text opened (None once the person's data is erased)."""
    if not rows:
        return []
    items = {i.id: i for i in session.scalars(
        select(AgendaItem).where(AgendaItem.id.in_([r.item_id for r in rows if r.item_id is not None])))}
    subjects = {}
    found: list[dict[str, Any]] = []
    for action in rows:
        referral = session.get(Referral, action.referral_id)
        assert referral is not None
        if referral.subject_id not in subjects:
            subject = session.get(Subject, referral.subject_id)
            assert subject is not None
            subjects[referral.subject_id] = sealed.Opener(crypto.envelope, subject)
        opener = subjects[referral.subject_id]
        item = items.get(action.item_id) if action.item_id is not None else None
        found.append({
            "id": action.id, "referral_id": action.referral_id,
            "meeting_id": item.meeting_id if item else None, "number": item.number if item else None,
            "description": opener.text(action.description, context(DESCRIPTION, action.referral_id, action.id)),
            "owner_agency": action.owner_agency, "due_on": action.due_on.isoformat(),
            "status": shown_status(action, today),
            "completion_note": opener.text(action.completion_note,
                                           context(COMPLETION_NOTE, action.referral_id, action.id)),
            "created_at": action.created_at.isoformat(), "updated_at": action.updated_at.isoformat(),
        })
    return found


def of_referral(session: Session, referral_id: str, owner: str | None) -> list[CaseAction]:
    query = select(CaseAction).where(CaseAction.referral_id == referral_id)
    if owner is not None:
        query = query.where(CaseAction.owner_agency == owner)
    return list(session.scalars(query.order_by(CaseAction.due_on, CaseAction.id)))


def owned_by(session: Session, agency_id: str, state: str, today: date, limit: int) -> list[CaseAction]:
    """An agency's actions: `due` (open, overdue included), `overdue`, or `all`; the earliest due first."""
    query = select(CaseAction).where(CaseAction.owner_agency == agency_id)
    if state in ("due", "overdue"):
        query = query.where(CaseAction.status == "open")
    if state == "overdue":
        query = query.where(CaseAction.due_on < today)
    return list(session.scalars(query.order_by(CaseAction.due_on, CaseAction.id).limit(limit)))
