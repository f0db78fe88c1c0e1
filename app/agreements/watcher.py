"""Reload agreements without a restart: every process polls the folder and swaps atomically."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.state import AppState

log = logging.getLogger("casebridge.policy")


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    if not directory.is_dir():
        return ()
    return tuple(
        (str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(directory.glob("*.y*ml"))
    )


class PolicyWatcher:
    """A daemon thread; with several workers each one notices the change on its own."""

    def __init__(self, state: AppState, interval: float) -> None:
        self.state = state
        self.interval = interval
        self._stop = threading.Event()
        self._seen = fingerprint(state.settings.policies_dir)
        self._thread = threading.Thread(target=self._run, name="policy-watcher", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def poll(self) -> bool:
        """Reload if the folder changed since the last look; True when it did."""
        from app.agreements.service import reload_and_log

        current = fingerprint(self.state.settings.policies_dir)
        if current == self._seen:
            return False
        self._seen = current
        reload_and_log(self.state, "file-change")
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the watcher must outlive a bad file
                log.exception("agreement reload failed; the agreements in force stay")
