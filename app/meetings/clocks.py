"""The network clocks as a scheduled job: what each network's protocol says is due, raised once.

Every round (one process at a time across the deployment: the same lease as the purge, by
another name) looks at each declared network: overdue triage and assignment, reviews due after
closure and repeat referrals (app/referrals/worklist.py), and actions open past their due date.
Each is raised once per referral, kind and due time as a `ClockNotice`: an entry of the change
feed for the network's coordinator (GET /v1/events). The same items are in the coordinator's
work list as they stand, and a regular meeting's proposed agenda takes them up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import transaction
from app.meetings.models import CaseAction, ClockNotice
from app.periodic import Periodic
from app.referrals import worklist
from app.referrals.models import Referral
from app.retention import tombstones
from app.retention.lease import Lease
from app.state import AppState

log = logging.getLogger("casebridge.clocks")
LEASE_NAME = "clocks"
ACTION_OVERDUE = "action_overdue"


class ClocksBusy(RuntimeError):
    """Another process is running the clocks now."""


@dataclass(slots=True)
class ClockReport:
    raised: dict[str, int] = field(default_factory=dict)  # by kind
    networks: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"networks": self.networks, "raised": dict(sorted(self.raised.items())),
                "total": sum(self.raised.values())}


def run(state: AppState) -> ClockReport:
    """Raise what is due in every declared network; idempotent (what was raised stays raised)."""
    lease = Lease(state.sessions, LEASE_NAME)
    if not lease.acquire():
        status = lease.status()
        raise ClocksBusy(f"another process runs the clocks ({status.holder}, lease until {status.expires_at})")
    completed = False
    try:
        report = ClockReport()
        now = state.clock()
        for network in state.policies.current.networks.values():
            if network.coordinator is None:
                continue  # an implicit network has no coordinator to tell
            with transaction(state.sessions) as session:
                _raise(session, network.id, _due(session, network, now), now, report)
            report.networks += 1
        completed = True
        return report
    finally:
        lease.release(completed=completed)


def _due(session: Session, network: object, now: datetime) -> list[tuple[str, str, datetime, str]]:
    """(referral, kind, due since, status) of everything due in the network."""
    found = [(i.referral_id, i.kind, i.due_since, i.status)
             for i in worklist.items(session, network.id, network.protocol, now)]  # type: ignore[attr-defined]
    overdue = session.execute(
        select(CaseAction.referral_id, CaseAction.due_on, Referral.status)
        .join(Referral, Referral.id == CaseAction.referral_id)
        .where(CaseAction.network_id == network.id, CaseAction.status == "open",  # type: ignore[attr-defined]
               CaseAction.due_on < now.date())
    ).all()
    for referral_id, due_on, status in overdue:  # overdue from the day after its due date
        since = datetime.combine(due_on + timedelta(days=1), time.min, UTC)
        found.append((referral_id, ACTION_OVERDUE, since, status))
    return found


def _raise(session: Session, network_id: str, due: list[tuple[str, str, datetime, str]], now: datetime,
           report: ClockReport) -> None:
    if not due:
        return
    raised = {tuple(row) for row in session.execute(
        select(ClockNotice.referral_id, ClockNotice.kind, ClockNotice.due_since)
        .where(ClockNotice.referral_id.in_(sorted({d[0] for d in due})))
    )}
    for referral_id, kind, since, status in due:
        if (referral_id, kind, since) in raised or tombstones.find(session, referral_id) is not None:
            continue
        raised.add((referral_id, kind, since))
        session.add(ClockNotice(network_id=network_id, referral_id=referral_id, kind=kind, due_since=since,
                                status=status, at=now))
        report.raised[kind] = report.raised.get(kind, 0) + 1


class ClockScheduler(Periodic):
    """A daemon thread: every ``interval`` seconds, run the clocks unless another process is."""

    def __init__(self, state: AppState, interval: float) -> None:
        super().__init__("clock-scheduler", interval, self.tick, _clocks_failed, join_seconds=30)
        self.state = state

    def tick(self) -> ClockReport | None:
        try:
            report = run(self.state)
        except ClocksBusy:
            return None
        if report.raised:
            log.info("clocks raised %s", report.as_dict())
        return report


def _clocks_failed(_exc: Exception) -> None:
    log.exception("the clocks failed; they will run again")
