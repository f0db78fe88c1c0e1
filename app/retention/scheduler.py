"""Runs the purge on a schedule in every process; the lease lets one of them at a time do it."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from app.db import utcnow
from app.retention import purge
from app.retention.lease import Lease
from app.retention.progress import log_every_tenth
from app.state import AppState

log = logging.getLogger("casebridge.retention")
MAX_TICK_SECONDS = 60.0


class RetentionScheduler:
    """A daemon thread: when the last completed run is older than the interval, try to run."""

    def __init__(self, state: AppState, interval: float) -> None:
        self.state = state
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention-scheduler", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def due(self) -> bool:
        status = Lease(self.state.sessions, purge.LEASE_NAME).status()
        if (
            status.holder is not None
            and status.expires_at is not None
            and status.expires_at > utcnow()
        ):
            return False
        last = status.last_completed_at
        return last is None or utcnow() - last >= timedelta(seconds=self.interval)

    def tick(self) -> purge.PurgeReport | None:
        """Run the purge if it is due and no other process runs it; the report when it ran."""
        if not self.due():
            return None
        try:
            return purge.run(self.state, trigger="schedule", progress=log_every_tenth("purging"))
        except purge.PurgeBusy:
            return None

    def _run(self) -> None:
        # The first look comes one tick after start, so a fleet restarting does not stampede.
        while not self._stop.wait(min(self.interval, MAX_TICK_SECONDS)):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.exception("scheduled purge failed; it will be tried again")
