"""A real `casebridge serve` on a free port, SQLite in a temporary data dir, for tests of the running service."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    """`casebridge serve` in its own process group; stopped (then killed) whatever happens."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.args = args
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.env.update({"CASEBRIDGE_ENV": "dev", "CASEBRIDGE_DATA_DIR": str(data_dir),
                         "CASEBRIDGE_SEED_DEMO": "true", "CASEBRIDGE_RETENTION_INTERVAL_SECONDS": "0"})
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, workers: int = 1) -> RunningServer:
        command = [str(Path(sys.executable).with_name("casebridge")), "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(workers), *self.args]
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own command
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_ready(workers)
        return self

    def _wait_ready(self, workers: int) -> None:
        assert self.proc is not None
        deadline, ready = time.monotonic() + READY_TIMEOUT_S, 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log()[-4000:]}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    ready += 1
                    if ready >= 2 and self.log().count('"worker started"') >= workers:
                        return
                    continue
            time.sleep(0.2)
        raise RuntimeError(f"the server did not become ready:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_entries(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log().splitlines():
            with suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def credentials(self, client_id: str) -> dict[str, Any]:
        clients = json.loads((self.data_dir / "demo-clients.json").read_text())
        found: dict[str, Any] = next(c for c in clients if c["client_id"] == client_id)
        return found

    def token(self, client_id: str) -> str:
        secret = self.credentials(client_id)["client_secret"]
        response = httpx.post(f"{self.base}/v1/token", data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def terminate(self, *, group: bool = False) -> None:
        """SIGTERM to the server process, as a container runtime sends it (or to its whole group)."""
        assert self.proc is not None
        if group:
            os.killpg(self.proc.pid, signal.SIGTERM)
        else:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
