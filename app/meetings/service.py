"""The case conference: a network's chair schedules meetings, the agenda is proposed from the
network's state, invited agencies read their items' referrals, the panel minutes and decides.

Who may do what:
- the **chair** (the protocol's chair agency, the coordinator by default, calling with the
  coordinator role, a party to an agreement in force of the network) schedules, edits the
  agenda, records attendance, minutes and decisions, and closes the meeting;
- an agency **invited** to an item sees that item, and reads its referral for the purpose
  `case_conference` with the record attribute `invited` true while the meeting is open: what
  its agreements grant for that, never more, and nothing of the other items.

A decision that moves the referral goes through `referrals.service.transition`, the ordinary
rules. Minutes are appended, never changed: once the meeting is closed an entry is a correction.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app import access
from app.auth.principal import Principal
from app.crypto.envelope import DataKey
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.meetings.models import AgendaItem, CaseAction, Meeting, MinutesEntry
from app.meetings.schemas import AgendaItemIn, AgendaItemPatch, MeetingIn, MinutesIn
from app.policy.model import Network
from app.policy.policy_set import PolicySet
from app.referrals import sealed, worklist
from app.referrals import service as referrals
from app.referrals.lifecycle import TERMINAL, Status
from app.referrals.models import Referral
from app.referrals.schemas import TransitionIn
from app.retention import tombstones
from app.retention.dates import RetentionRules
from app.subjects import service as subjects
from app.subjects.models import Subject

CONFERENCE = "case_conference"  # the purpose every read through a meeting states
MINUTES_TEXT = "meeting.minutes.text"
OPEN_STATUSES = frozenset(s.value for s in Status if s not in TERMINAL)


@dataclass(frozen=True, slots=True)
class Move:
    """What a decision does to the referral: a transition, or (target None) nothing, from these statuses."""

    target: str | None
    outcome: str | None = None
    from_statuses: frozenset[str] = frozenset()


DECISIONS: dict[str, Move] = {
    "accept": Move(Status.accepted.value),
    "decline": Move(Status.declined.value),
    "assign": Move(Status.assigned.value),
    "close": Move(Status.closed.value),
    "refer_on": Move(Status.closed.value, outcome="referred_elsewhere"),
    "continue_support": Move(None, from_statuses=frozenset({Status.assigned.value, Status.in_intervention.value})),
    "escalate": Move(None, from_statuses=OPEN_STATUSES),
}
# The order a proposed agenda takes: the most pressing first.
REASON_ORDER = ("triage_overdue", "assignment_overdue", "newly_triaged", "repeat_referral", "review_due",
                "open_actions")


def new_meeting_id() -> str:
    return "mtg_" + secrets.token_urlsafe(12)


# -- who ------------------------------------------------------------------------------------


def is_chair(policies: PolicySet, principal: Principal, network: Network, now: datetime) -> bool:
    return (
        network.chair == principal.agency_id and "coordinator" in principal.roles
        and access.in_force_party(policies, principal.agency_id, network.id, now.date())
    )


def network_of(policies: PolicySet, network_id: str) -> Network:
    network = policies.network(network_id)
    if network is None or network.coordinator is None:
        raise NotFound(f"No network {network_id!r} on this deployment.")
    return network


def require_chair(policies: PolicySet, principal: Principal, network: Network, now: datetime, action: str) -> None:
    access.refuse_admin(principal)
    if not is_chair(policies, principal, network, now):
        raise Forbidden(f"{action} is for the chair of network {network.id!r} ({network.chair}), with the "
                        "coordinator role.", slug="access-denied")


def load(session: Session, meeting_id: str, *, for_update: bool = False) -> Meeting:
    query = select(Meeting).where(Meeting.id == meeting_id)
    meeting = session.scalars(query.with_for_update() if for_update else query).first()
    if meeting is None:
        raise NotFound("No such meeting.")
    return meeting


def items_of(session: Session, meeting: Meeting) -> list[AgendaItem]:
    return list(session.scalars(
        select(AgendaItem).where(AgendaItem.meeting_id == meeting.id).order_by(AgendaItem.number)))


def item_of(session: Session, meeting: Meeting, number: int) -> AgendaItem:
    item = session.scalars(
        select(AgendaItem).where(AgendaItem.meeting_id == meeting.id, AgendaItem.number == number)).first()
    if item is None:
        raise NotFound(f"Meeting {meeting.id} has no item {number}.")
    return item


def visible_items(
    policies: PolicySet, principal: Principal, network: Network, items: Sequence[AgendaItem], now: datetime,
) -> list[AgendaItem]:
    """The items the caller sits at: every one for the chair, else those its agency is invited to."""
    access.refuse_admin(principal)
    if is_chair(policies, principal, network, now):
        return list(items)
    mine = [i for i in items if principal.agency_id in i.invited]
    if not mine or not access.in_force_party(policies, principal.agency_id, network.id, now.date()):
        raise Forbidden("Your agency is not invited to any item of this meeting.", slug="access-denied")
    return mine


def sits_at(policies: PolicySet, principal: Principal, network: Network, item: AgendaItem, now: datetime) -> bool:
    """Whether the caller is at this item of an open meeting: the chair, or an invited agency."""
    return is_chair(policies, principal, network, now) or (
        principal.agency_id in item.invited
        and access.in_force_party(policies, principal.agency_id, network.id, now.date())
    )


# -- scheduling and the agenda ---------------------------------------------------------------


def schedule(
    session: Session, policies: PolicySet, principal: Principal, network_id: str, data: MeetingIn, now: datetime,
) -> Meeting:
    network = network_of(policies, network_id)
    require_chair(policies, principal, network, now, "Scheduling a meeting")
    if data.scheduled_for < now.replace(second=0, microsecond=0):
        raise _invalid("$.scheduled_for", "a meeting is scheduled for now or later", "past")
    meeting = Meeting(id=new_meeting_id(), network_id=network.id, kind=data.kind, scheduled_for=data.scheduled_for,
                      status="scheduled", created_by_agency=principal.agency_id,
                      created_by_client=principal.client_id, created_at=now, version=1)
    session.add(meeting)
    session.flush()
    added: list[AgendaItem] = []
    for index, given in enumerate(data.items):
        added.append(_add(session, policies, network, meeting, given, "added", f"$.items[{index}]", now, added))
    if data.kind == "regular" and data.propose_agenda:
        taken = {i.referral_id for i in added}
        for referral, reason in propose(session, network, now):
            if referral.id not in taken:
                taken.add(referral.id)
                number = len(added) + 1
                added.append(AgendaItem(meeting_id=meeting.id, number=number, referral_id=referral.id, reason=reason,
                                        invited=default_invited(session, policies, network, referral, now),
                                        attended=None, decision=None))
                session.add(added[-1])
    session.flush()
    return meeting


def propose(session: Session, network: Network, now: datetime) -> list[tuple[Referral, str]]:
    """What the network's state puts on the next agenda, most pressing first: the clocks' items
    (overdue triage and assignment, reviews due, repeat referrals), referrals triaged and never
    yet on an agenda, and referrals with open actions (they roll on until done or cancelled).
    Referrals already on another meeting still to sit are left to that one."""
    reasons: dict[str, str] = {}
    for due in worklist.items(session, network.id, network.protocol, now):
        reasons.setdefault(due.referral_id, due.kind)
    never_discussed = session.scalars(
        select(Referral.id).where(Referral.network_id == network.id, Referral.status == Status.triaged.value,
                                  ~exists().where(AgendaItem.referral_id == Referral.id))
    ).all()
    for referral_id in never_discussed:
        reasons.setdefault(referral_id, "newly_triaged")
    for referral_id in session.scalars(
        select(CaseAction.referral_id).where(CaseAction.network_id == network.id, CaseAction.status == "open")
    ).all():
        reasons.setdefault(referral_id, "open_actions")
    pending = set(session.scalars(
        select(AgendaItem.referral_id).join(Meeting, Meeting.id == AgendaItem.meeting_id)
        .where(Meeting.network_id == network.id, Meeting.status == "scheduled",
               AgendaItem.referral_id.in_(list(reasons)))
    ).all()) if reasons else set()
    wanted = [rid for rid in reasons if rid not in pending]
    found = {r.id: r for r in session.scalars(
        select(Referral).where(Referral.id.in_(wanted), Referral.network_id == network.id))} if wanted else {}
    return sorted(((found[rid], reasons[rid]) for rid in wanted if rid in found and tombstones.find(
        session, rid) is None), key=lambda pair: (REASON_ORDER.index(pair[1]), pair[0].created_at, pair[0].id))


def default_invited(
    session: Session, policies: PolicySet, network: Network, referral: Referral, now: datetime,
) -> list[str]:
    """The agencies already party to the case: its referrer, its assignees, its open actions' owners."""
    owners = session.scalars(
        select(CaseAction.owner_agency).where(CaseAction.referral_id == referral.id, CaseAction.status == "open")
    ).all()
    candidates = {referral.referring_agency, *referral.assigned_agencies, *owners} - {network.chair}
    return sorted(a for a in candidates if _member(policies, network, a, now))


def add_item(
    session: Session, policies: PolicySet, principal: Principal, meeting_id: str, data: AgendaItemIn, now: datetime,
) -> tuple[Meeting, AgendaItem]:
    meeting = load(session, meeting_id, for_update=True)
    network = network_of(policies, meeting.network_id)
    require_chair(policies, principal, network, now, "Editing the agenda")
    _still_open(meeting)
    item = _add(session, policies, network, meeting, data, "added", "$", now, items_of(session, meeting))
    _touch(meeting)
    session.flush()
    return meeting, item


def _add(
    session: Session, policies: PolicySet, network: Network, meeting: Meeting, data: AgendaItemIn, reason: str,
    where: str, now: datetime, existing: Sequence[AgendaItem],
) -> AgendaItem:
    referral = session.get(Referral, data.referral_id)
    if referral is None or referral.network_id != network.id or tombstones.find(session, referral.id):
        # The same answer for a referral of another network as for none at all: nothing leaks across.
        raise _invalid(f"{where}.referral_id", f"not a referral of network {network.id!r}", "unknown_referral")
    if any(i.referral_id == referral.id for i in existing):
        raise Conflict(f"Referral {referral.id} is already on this meeting's agenda.", slug="already-on-agenda")
    invited = (default_invited(session, policies, network, referral, now) if data.invited is None
               else _agencies(policies, network, data.invited, f"{where}.invited", now))
    number = max((i.number for i in existing), default=0) + 1
    item = AgendaItem(meeting_id=meeting.id, number=number, referral_id=referral.id, reason=reason,
                      invited=invited, attended=None, decision=None)
    session.add(item)
    session.flush()
    return item


def edit_item(
    session: Session, policies: PolicySet, principal: Principal, meeting_id: str, number: int,
    data: AgendaItemPatch, now: datetime,
) -> tuple[Meeting, AgendaItem]:
    meeting = load(session, meeting_id, for_update=True)
    network = network_of(policies, meeting.network_id)
    require_chair(policies, principal, network, now, "Editing the agenda")
    _still_open(meeting)
    item = item_of(session, meeting, number)
    if data.invited is None and data.attended is None:
        raise _invalid("$", "give invited, attended or both", "missing")
    invited = item.invited if data.invited is None else _agencies(policies, network, data.invited, "$.invited", now)
    if data.attended is not None:
        strangers = sorted(set(data.attended) - set(invited) - {network.chair or ""})
        if strangers:
            raise _invalid("$.attended", f"not invited to this item: {', '.join(strangers)}", "not_invited")
        item.attended = sorted(set(data.attended))
    item.invited = invited
    _touch(meeting)
    session.flush()
    return meeting, item


def remove_item(session: Session, policies: PolicySet, principal: Principal, meeting_id: str, number: int,
                now: datetime) -> tuple[Meeting, AgendaItem]:
    meeting = load(session, meeting_id, for_update=True)
    network = network_of(policies, meeting.network_id)
    require_chair(policies, principal, network, now, "Editing the agenda")
    _still_open(meeting)
    item = item_of(session, meeting, number)
    if session.scalar(select(func.count()).select_from(MinutesEntry).where(MinutesEntry.item_id == item.id)):
        raise Conflict("This item has minutes: it stays on the agenda.", slug="item-has-minutes")
    session.delete(item)
    _touch(meeting)
    session.flush()
    return meeting, item


def close(session: Session, policies: PolicySet, principal: Principal, meeting_id: str, now: datetime) -> Meeting:
    meeting = load(session, meeting_id, for_update=True)
    network = network_of(policies, meeting.network_id)
    require_chair(policies, principal, network, now, "Closing a meeting")
    _still_open(meeting)
    meeting.status, meeting.closed_at = "closed", now
    _touch(meeting)
    session.flush()
    return meeting


# -- minutes and decisions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Minuted:
    """What recording minutes did: the entry, and the referral moved by the decision (and from where)."""

    meeting: Meeting
    item: AgendaItem
    referral: Referral
    entry: MinutesEntry
    moved: Referral | None
    moved_from: str | None


def record_minutes(
    session: Session, policies: PolicySet, principal: Principal, meeting_id: str, number: int, data: MinutesIn,
    now: datetime, *, crypto: referrals.Crypto, retention: RetentionRules,
) -> Minuted:
    """Append the item's minutes (a correction once the meeting is closed) and apply its decision."""
    meeting = load(session, meeting_id, for_update=True)
    network = network_of(policies, meeting.network_id)
    require_chair(policies, principal, network, now, "Recording minutes")
    item = item_of(session, meeting, number)
    kind = "minutes" if meeting.status == "scheduled" else "correction"
    moved: tuple[Referral | None, str | None] = (None, None)
    if data.decision is not None:
        if kind == "correction":
            raise Conflict("The meeting is closed: its decisions stand; a correction records minutes only.",
                           slug="meeting-closed")
        if item.decision is not None:
            raise Conflict(f"Item {number} was decided already ({item.decision}).", slug="item-decided")
        moved = _decide(session, policies, principal, item, data, now, crypto=crypto, retention=retention)
        item.decision = data.decision
    elif data.agencies or data.outcome is not None:
        raise _invalid("$.decision", "agencies and outcome go with a decision", "missing")
    entry = MinutesEntry(item_id=item.id, referral_id=item.referral_id, kind=kind, decision=data.decision,
                         by_agency=principal.agency_id, by_client=principal.client_id, at=now)
    session.add(entry)
    session.flush()
    referral = session.get(Referral, item.referral_id)
    assert referral is not None  # the item goes with its referral
    key = data_key(session, crypto, referral)
    entry.text = sealed.seal(key, data.text, minutes_context(item.referral_id, entry.id))
    _touch(meeting)
    session.flush()
    return Minuted(meeting, item, referral, entry, *moved)


def _decide(
    session: Session, policies: PolicySet, principal: Principal, item: AgendaItem, data: MinutesIn, now: datetime,
    *, crypto: referrals.Crypto, retention: RetentionRules,
) -> tuple[Referral | None, str | None]:
    move = DECISIONS[data.decision or ""]
    referral = referrals.load(session, item.referral_id, for_update=True)
    if move.target is None:
        if referral.status not in move.from_statuses:
            raise Conflict(
                f"{data.decision!r} is not a decision for a referral in status {referral.status!r}.",
                slug="decision-not-allowed", allowed_statuses=sorted(move.from_statuses),
            )
        if data.agencies or data.outcome is not None:
            raise _invalid("$.decision", f"{data.decision} takes no agencies or outcome", "unexpected")
        return None, None
    outcome = move.outcome or data.outcome
    if move.outcome is not None and data.outcome not in (None, move.outcome):
        raise _invalid("$.outcome", f"{data.decision} closes as {move.outcome}", "unexpected")
    step = TransitionIn(to=move.target, reason=data.text[:2000] if move.target == Status.declined.value else None,
                        agencies=data.agencies, outcome=outcome)
    moved, before = referrals.transition(session, policies, principal, referral.id, step, None, now, crypto=crypto,
                                         retention=retention)
    return moved, before.status


def minutes_context(referral_id: str, entry_id: int) -> str:
    return f"{MINUTES_TEXT}:{referral_id}:{entry_id}"


def minutes_of(session: Session, crypto: referrals.Crypto, referral: Any) -> list[dict[str, Any]]:
    """Every agenda item the referral was on, oldest meeting first, with its minutes opened."""
    rows = session.execute(
        select(AgendaItem, Meeting).join(Meeting, Meeting.id == AgendaItem.meeting_id)
        .where(AgendaItem.referral_id == referral.id).order_by(Meeting.scheduled_for, Meeting.id)
    ).all()
    if not rows:
        return []
    entries: dict[int, list[MinutesEntry]] = {}
    for entry in session.scalars(
        select(MinutesEntry).where(MinutesEntry.referral_id == referral.id).order_by(MinutesEntry.id)
    ):
        entries.setdefault(entry.item_id, []).append(entry)
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None
    opener = sealed.Opener(crypto.envelope, subject)
    return [
        {"meeting_id": meeting.id, "scheduled_for": meeting.scheduled_for.isoformat(), "number": item.number,
         "decision": item.decision, "attended": item.attended,
         "entries": [{"id": e.id, "kind": e.kind, "decision": e.decision, "by_agency": e.by_agency,
                      "at": e.at.isoformat(), "text": opener.text(e.text, minutes_context(referral.id, e.id))}
                     for e in entries.get(item.id, [])]}
        for item, meeting in rows
    ]


def meeting_document(meeting: Meeting, network: Network, items: Iterable[AgendaItem]) -> dict[str, Any]:
    return {
        "id": meeting.id, "network": meeting.network_id, "kind": meeting.kind,
        "scheduled_for": meeting.scheduled_for.isoformat(), "status": meeting.status, "chair": network.chair,
        "closed_at": meeting.closed_at.isoformat() if meeting.closed_at else None,
        "agenda": [item_document(i) for i in items],
    }


def item_document(item: AgendaItem) -> dict[str, Any]:
    return {"number": item.number, "referral_id": item.referral_id, "reason": item.reason,
            "invited": list(item.invited), "attended": item.attended, "decision": item.decision}


def etag(meeting: Meeting) -> str:
    return f'"{meeting.id}.v{meeting.version}"'


# -- helpers ---------------------------------------------------------------------------------


def data_key(session: Session, crypto: referrals.Crypto, referral: Referral) -> DataKey:
    """The person's data key: what every free text of the case conference is sealed under."""
    subject = session.get(Subject, referral.subject_id)
    assert subject is not None  # a referral's subject row outlives it
    return subjects.data_key(crypto.envelope, subject)


def _member(policies: PolicySet, network: Network, agency_id: str, now: datetime) -> bool:
    return agency_id in network.members and access.in_force_party(policies, agency_id, network.id, now.date())


def _agencies(policies: PolicySet, network: Network, given: Sequence[str], where: str, now: datetime) -> list[str]:
    strangers = sorted({a for a in given if not _member(policies, network, a, now)})
    if strangers:
        raise _invalid(where, f"not members of network {network.id!r} under an agreement in force: "
                              f"{', '.join(strangers)}", "not_a_member")
    return sorted(set(given))


def _still_open(meeting: Meeting) -> None:
    if meeting.status != "scheduled":
        raise Conflict("The meeting is closed: its agenda is read-only (minutes take corrections).",
                       slug="meeting-closed")


def _touch(meeting: Meeting) -> None:
    meeting.version += 1


def _invalid(path: str, message: str, kind: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}.", errors=[{"path": path, "message": message, "type": kind}])
