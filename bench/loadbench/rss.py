"""Server memory: VmRSS of every process of the server, sampled in a thread, peaks per phase."""

from __future__ import annotations

import threading
from contextlib import suppress
from typing import Any

from .server import process_tree


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of the server's process tree; peaks per phase, in total and per worker."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root, self.interval = root, interval
        self.phase = "startup"
        self.peaks: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        tree = process_tree(self.root)
        sizes = {pid: rss_mb(pid) for pid in tree}
        total = sum(v for v in sizes.values() if v is not None)
        peak = self.peaks.setdefault(
            self.phase, {"total_mb": 0.0, "workers_mb": {}, "supervisor_mb": 0.0, "other_mb": 0.0}
        )
        peak["total_mb"] = round(max(peak["total_mb"], total), 1)
        for pid, role in tree.items():
            size = sizes[pid]
            if size is None:
                continue
            if role == "worker":
                peak["workers_mb"][str(pid)] = round(max(peak["workers_mb"].get(str(pid), 0.0), size), 1)
            else:
                key = f"{role}_mb"
                peak[key] = round(max(peak[key], size), 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            with suppress(Exception):
                self.sample()
            self._stop.wait(self.interval)

    def overall(self) -> dict[str, Any]:
        phases = [p for name, p in self.peaks.items() if name != "startup"]
        workers: dict[str, float] = {}
        for p in phases:
            for pid, size in p["workers_mb"].items():
                workers[pid] = max(workers.get(pid, 0.0), size)
        return {
            "peak_total_mb": max((p["total_mb"] for p in phases), default=0.0),
            "peak_per_worker_mb": workers,
            "peak_worker_mb": max(workers.values(), default=0.0),
            "supervisor_mb": max((p["supervisor_mb"] for p in phases), default=0.0),
            "idle_after_start": self.peaks.get("idle"),
        }
