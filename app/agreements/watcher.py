"""Reload agreements without a restart: every process polls the folder and swaps atomically."""

from __future__ import annotations

import logging
from pathlib import Path

from app.periodic import Periodic
from app.state import AppState

log = logging.getLogger("casebridge.policy")


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    if not directory.is_dir():
        return ()
    return tuple(
        (str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(directory.glob("*.y*ml"))
    )


class PolicyWatcher(Periodic):
    """A daemon thread; with several workers each one notices the change on its own."""

    def __init__(self, state: AppState, interval: float) -> None:
        super().__init__("policy-watcher", interval, self.poll, _reload_failed)
        self.state = state
        self._seen = fingerprint(state.settings.policies_dir)
        self._signed = state.policies.signatures_fingerprint()

    def poll(self) -> bool:
        """Reload if the folder changed, or rebuild if a signature was recorded, since the last look;
        True when either happened."""
        from app.agreements.service import reload_and_log

        current = fingerprint(self.state.settings.policies_dir)
        signed = self.state.policies.signatures_fingerprint()
        if current == self._seen and signed == self._signed:
            return False
        self._signed = signed
        if current == self._seen:
            self.state.policies.refresh()
            return True
        self._seen = current
        reload_and_log(self.state, "file-change")
        return True


def _reload_failed(_exc: Exception) -> None:
    log.exception("agreement reload failed; the agreements in force stay")
