"""The coordinator's work list: what the network's protocol says is due, from the referrals' own dates.

- **triage_overdue**: submitted for longer than the protocol allows for its urgency;
- **assignment_overdue**: accepted for longer than that, and not yet assigned;
- **review_due**: closed, and a review point after closure has come (shown until a regular
  meeting's cadence later, when the next meeting has had its chance to take it up);
- **repeat_referral**: a referral still before the panel about a person referred before,
  within the protocol's window (linked through the subject, so it works on sealed identities).

Each item names a referral by id with its status and urgency (and, for a repeat, the earlier
referral): the route decides each for the purpose stated and logs what it lists (the one door).

Beside them, from the agreements rather than the referrals (no case data):

- **agreement_review_60** / **agreement_review_30**: an agreement in force deciding the network
  reaches its `review_by` within 60 (then 30) days; from that day it decides nothing until a renewed
  version is signed, so the coordinator is told while there is time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased

from app.policy.model import Protocol
from app.policy.policy_set import PolicySet
from app.referrals.lifecycle import Status
from app.referrals.models import Referral, StatusChange
from app.retention.models import Tombstone

BEFORE_THE_PANEL = (Status.submitted.value, Status.triaged.value, Status.accepted.value)


@dataclass(frozen=True, slots=True)
class Item:
    referral_id: str
    kind: str
    due_since: datetime
    status: str
    urgency: str
    detail: str
    earlier: str | None = None  # a repeat: the person's earlier referral

    def to_dict(self) -> dict[str, Any]:
        return {"referral_id": self.referral_id, "kind": self.kind, "due_since": self.due_since.isoformat(),
                "status": self.status, "urgency": self.urgency, "detail": self.detail}

    def without_earlier(self) -> Item:
        """The repeat, saying nothing of the earlier referral (one the caller may not read)."""
        return replace(self, earlier=None, detail="the person was referred before, within the repeat window")


# The statuses each kind of item is found among.
STATUSES_OF = {
    "triage_overdue": (Status.submitted.value,),
    "assignment_overdue": (Status.accepted.value,),
    "review_due": (Status.closed.value,),
    "repeat_referral": BEFORE_THE_PANEL,
}


def items(session: Session, network_id: str, protocol: Protocol, now: datetime, kind: str | None = None) -> list[Item]:
    """Everything due in the network (or only items of one kind), the longest overdue first."""
    found: list[Item] = []
    statuses = STATUSES_OF[kind] if kind is not None else (*BEFORE_THE_PANEL, Status.closed.value)
    rows = session.execute(
        select(Referral.id, Referral.status, Referral.urgency, Referral.created_at, Referral.subject_id)
        .where(Referral.network_id == network_id,
               Referral.status.in_(statuses),
               ~exists().where(Tombstone.record_id == Referral.id))
    ).all()
    if kind == "repeat_referral":
        return sorted(_repeats(session, network_id, protocol, rows),
                      key=lambda item: (item.due_since, item.referral_id, item.kind))
    entered = _entered(session, [r.id for r in rows if r.status in (Status.accepted.value, Status.closed.value)])
    for rid, status, urgency, created_at, _ in rows:
        if status == Status.submitted.value:
            allowed = protocol.triage_deadline(urgency)
            if allowed is not None and allowed.add_to(created_at) <= now:
                found.append(Item(rid, "triage_overdue", allowed.add_to(created_at), status, urgency,
                                  f"not triaged within {allowed.iso()} ({urgency})"))
        elif status == Status.accepted.value and rid in entered:
            allowed = protocol.assign_deadline(urgency)
            if allowed is not None and allowed.add_to(entered[rid]) <= now:
                found.append(Item(rid, "assignment_overdue", allowed.add_to(entered[rid]), status, urgency,
                                  f"not assigned within {allowed.iso()} of acceptance ({urgency})"))
        elif status == Status.closed.value and rid in entered:
            for point in protocol.reviews_after_closure:
                due = point.add_to(entered[rid])
                if due <= now < protocol.cadence.add_to(due):
                    found.append(Item(rid, "review_due", due, status, urgency,
                                      f"review {point.iso()} after closure"))
    if kind is None:
        found += _repeats(session, network_id, protocol, [r for r in rows if r.status in BEFORE_THE_PANEL])
    return sorted((i for i in found if kind is None or i.kind == kind),
                  key=lambda item: (item.due_since, item.referral_id, item.kind))


# The sharpest first: an agreement is listed once, under the nearest horizon it is within.
AGREEMENT_HORIZONS = {"agreement_review_30": 30, "agreement_review_60": 60}


@dataclass(frozen=True, slots=True)
class AgreementReview:
    """An agreement of the network whose review_by comes within a horizon: no case data."""

    kind: str
    agreement: str
    version: int
    review_by: date
    days_left: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "agreement": self.agreement, "version": self.version,
                "review_by": self.review_by.isoformat(), "days_left": self.days_left,
                "detail": f"agreement {self.agreement} version {self.version} is due for review by "
                          f"{self.review_by.isoformat()} ({self.days_left} days): from that day nothing is "
                          "shared under it until a renewed version is signed"}


def agreement_reviews(
    policies: PolicySet, network_id: str, today: date, kind: str | None = None,
) -> list[AgreementReview]:
    """The agreements in force deciding the network whose review_by comes within 60 days, the nearest first."""
    network = policies.network(network_id)
    found: list[AgreementReview] = []
    for agreement_id in network.agreements if network is not None else ():
        agreement = policies.get(agreement_id)
        if agreement is None or not agreement.in_force(today):
            continue
        left = (agreement.review_by - today).days
        within = next((k for k, days in AGREEMENT_HORIZONS.items() if left <= days), None)
        if within is not None and kind in (None, within):
            found.append(AgreementReview(within, agreement.id, agreement.version, agreement.review_by, left))
    return sorted(found, key=lambda review: (review.review_by, review.agreement))


def _entered(session: Session, referral_ids: Sequence[str]) -> dict[str, datetime]:
    """When each referral last entered its current status (its latest step)."""
    if not referral_ids:
        return {}
    latest: dict[str, datetime] = {}
    for referral_id, at in session.execute(
        select(StatusChange.referral_id, StatusChange.at)
        .where(StatusChange.referral_id.in_(referral_ids)).order_by(StatusChange.id)
    ):
        latest[referral_id] = at
    return latest


def _repeats(session: Session, network_id: str, protocol: Protocol, open_rows: Sequence[Any]) -> list[Item]:
    """Referrals before the panel whose person was referred before, within the window."""
    if not open_rows:
        return []
    earlier = aliased(Referral)
    found: list[Item] = []
    said: set[str] = set()
    by_id = {row.id: row for row in open_rows}
    for referral_id, earlier_id, earlier_at in session.execute(
        select(Referral.id, earlier.id, earlier.created_at)
        .join(earlier, and_(earlier.subject_id == Referral.subject_id, earlier.id != Referral.id,
                            earlier.created_at < Referral.created_at))
        .where(Referral.id.in_(list(by_id)), earlier.network_id == network_id)
        .order_by(Referral.id, earlier.created_at.desc())
    ):
        row = by_id[referral_id]
        if referral_id in said:
            continue  # the most recent earlier referral says it
        said.add(referral_id)
        if protocol.repeat_window.add_to(earlier_at) >= row.created_at:
            found.append(Item(referral_id, "repeat_referral", row.created_at, row.status, row.urgency,
                              f"the person was referred before, on {earlier_at.date().isoformat()} "
                              f"({earlier_id})", earlier_id))
    return found
