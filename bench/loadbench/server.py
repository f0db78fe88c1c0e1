"""The service under load: `casebridge serve --workers N` in its own process group, and its processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx

from . import ROOT

READY_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def casebridge() -> Path:
    """The virtualenv's `casebridge` command, beside this interpreter."""
    return Path(sys.executable).with_name("casebridge")


def server_env(data_dir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
    env.update(
        {
            "CASEBRIDGE_ENV": "dev",
            "CASEBRIDGE_DATA_DIR": str(data_dir),
            "CASEBRIDGE_DATABASE_URL": url,
            "CASEBRIDGE_SEED_DEMO": "true",
            "CASEBRIDGE_LOG_LEVEL": "WARNING",
            "CASEBRIDGE_BENCH_BARE_READS": "true",
        }
    )
    return env


class Server:
    """`casebridge serve --workers N` in its own process group, stopped whatever happens."""

    def __init__(self, data_dir: Path, url: str, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.env = server_env(data_dir, url)
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = self.launch()
        self.wait_ready(self.proc)

    def launch(self) -> subprocess.Popen[bytes]:
        command = [
            str(casebridge()),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        with self.log_path.open("wb") as out:
            return subprocess.Popen(  # noqa: S603
                command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        ready = 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}):\n{self.tail()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    ready += 1
                    # Every worker up (the kernel spreads connections among them), then ready.
                    if ready >= 4 * self.workers and len(self.worker_pids()) == self.workers:
                        return
                    continue
            ready = 0
            time.sleep(0.2)
        raise RuntimeError(f"the server did not become ready:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def worker_pids(self) -> list[int]:
        return [pid for pid, role in process_tree(self.proc.pid).items() if role == "worker"] if self.proc else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def process_tree(root: int) -> dict[int, str]:
    """The server's processes by role: supervisor, worker, other (multiprocessing helpers)."""
    tree = dict.fromkeys(descendants(root), "other")
    for pid in tree:
        cmdline = cmdline_of(pid)
        if pid == root:
            tree[pid] = "supervisor"
        elif "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            tree[pid] = "worker"
    if not any(role == "worker" for role in tree.values()):
        tree[root] = "worker"  # one worker: uvicorn serves in the main process
    return tree


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children = children_by_parent()
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def cmdline_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
