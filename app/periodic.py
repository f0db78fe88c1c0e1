"""A background thread that does one piece of work every so often, until told to stop.

The agreements' watcher, the keyring watcher, the checkpointer and the retention scheduler
each run their own work on it; a failed round is reported and the next round tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """Call ``work`` every ``interval`` seconds (the first call one interval after start).

    An interval of 0 or less never starts the thread (tests then call the work directly).
    A failed round is handed to ``on_error``; the thread keeps going.
    """

    def __init__(
        self, name: str, interval: float, work: Callable[[], object],
        on_error: Callable[[Exception], None], *, join_seconds: float = 5.0,
    ) -> None:
        self.name = name
        self.interval = interval
        self.work = work
        self.on_error = on_error
        self.join_seconds = join_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_seconds)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.work()
            except Exception as exc:  # noqa: BLE001 - one bad round must not end the thread
                self.on_error(exc)
