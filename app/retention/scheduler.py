"""Runs the purge on a schedule in every process; the lease lets one of them at a time do it."""

from __future__ import annotations

import logging
from datetime import timedelta

from app.db import utcnow
from app.periodic import Periodic
from app.retention import purge
from app.retention.lease import Lease
from app.retention.progress import log_every_tenth
from app.state import AppState

log = logging.getLogger("casebridge.retention")
MAX_TICK_SECONDS = 60.0


class RetentionScheduler(Periodic):
    """A daemon thread: when the last completed run is older than the interval, try to run.

    It looks every ``interval`` seconds, at most every minute; the first look comes one tick
    after start, so a fleet restarting does not stampede.
    """

    def __init__(self, state: AppState, interval: float) -> None:
        super().__init__("retention-scheduler", min(interval, MAX_TICK_SECONDS), self.tick, _purge_failed,
                         join_seconds=30)
        self.state = state
        self.every = interval

    def due(self) -> bool:
        status = Lease(self.state.sessions, purge.LEASE_NAME).status()
        if (
            status.holder is not None
            and status.expires_at is not None
            and status.expires_at > utcnow()
        ):
            return False
        last = status.last_completed_at
        return last is None or utcnow() - last >= timedelta(seconds=self.every)

    def tick(self) -> purge.PurgeReport | None:
        """Run the purge if it is due and no other process runs it; the report when it ran."""
        if not self.due():
            return None
        try:
            return purge.run(self.state, trigger="schedule", progress=log_every_tenth("purging"))
        except purge.PurgeBusy:
            return None


def _purge_failed(_exc: Exception) -> None:
    log.exception("scheduled purge failed; it will be tried again")
