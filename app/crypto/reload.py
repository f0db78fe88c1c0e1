"""Running processes pick up a keyring file rotated by another process, without a restart."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from app import metrics
from app.crypto.keyring import Keyring, KeyringError, file_is_private, not_private
from app.periodic import Periodic

log = logging.getLogger("casebridge.keys")


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class KeyringFile:
    """Re-reads the keyring file when it changed (rotation replaces it atomically)."""

    def __init__(self, keyring: Keyring, path: Path) -> None:
        self.keyring = keyring
        self.path = path
        self._seen = _signature(path)
        self._lock = threading.Lock()

    def attach(self) -> KeyringFile:
        """Let the keyring reload itself when asked for a key id it does not hold."""
        self.keyring.reload_on_miss = self.reload_if_changed
        return self

    def mark_current(self) -> None:
        """This process wrote the file itself (it already holds what the file says)."""
        with self._lock:
            self._seen = _signature(self.path)

    def reload_if_changed(self) -> bool:
        """True when the file changed and the keyring now holds its keys."""
        with self._lock:
            current = _signature(self.path)
            if current is None or current == self._seen:
                return False
            try:
                if not file_is_private(self.path):
                    raise KeyringError(not_private(self.path))
                fresh = Keyring.load(self.path)
            except KeyringError as exc:
                # Keep serving with the keys held; the next change is tried again.
                log.error("keyring reload refused", extra={"reason": str(exc)})
                metrics.keyring_reloaded(ok=False)
                self._seen = current
                return False
            held = {e.id for e in self.keyring.entries}
            dropped = sorted(held - {e.id for e in fresh.entries})
            if dropped:
                log.warning("keyring reload drops keys", extra={"key_ids": dropped})
            self.keyring.replace(fresh.entries)
            self._seen = current
        log.info("keyring reloaded", extra={"keys": len(fresh.entries)})
        metrics.keyring_reloaded(ok=True)
        return True


class KeyringWatcher(Periodic):
    """A daemon thread polling the keyring file, like the agreements' watcher."""

    def __init__(self, source: KeyringFile, interval: float) -> None:
        super().__init__("keyring-watcher", interval, source.reload_if_changed, _reload_failed)
        self.source = source


def _reload_failed(_exc: Exception) -> None:
    log.exception("keyring reload failed; the keys held stay")
