"""docs/examples/partner_sync.py against a running service: sync, withdrawals, renewal, retries, errors.

Faults a live service does not produce on demand (a 503 from an unwritable log, a 429, a token
refused mid-sync) are injected by a small HTTP proxy in front of the real service; every other
request goes through to it unchanged.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "examples" / "partner_sync.py"
PARTNER = "youth-ngo-reader"
TOKEN_TTL = 60  # the shortest the service allows, so renewal is seen within a test


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("partner-sync") / "data",
                            env={"CASEBRIDGE_TOKEN_TTL_SECONDS": str(TOKEN_TTL)})
    try:
        yield running.start()
    finally:
        running.stop()


@dataclass
class Fault:
    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    status: int
    at: float
    injected: bool


class FaultProxy:
    """Forwards to the service, except for the next request matching each queued fault."""

    def __init__(self, upstream_port: int) -> None:
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                with proxy.lock:
                    fault = next((f for f in proxy.faults if f.method == self.command and f.path == path), None)
                    if fault is not None:
                        proxy.faults.remove(fault)
                # Each call is recorded before its answer goes out: the client's next call cannot be
                # recorded ahead of it (recorded after, the order flipped under load).
                if fault is not None:
                    proxy.record(self.command, path, fault.status, injected=True)
                    problem = json.dumps({"type": "about:blank", "title": "Injected", "status": fault.status,
                                          "detail": f"injected {fault.status}"}).encode()
                    self.send_response(fault.status)
                    for name, value in {"Content-Type": "application/problem+json", **fault.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(problem)))
                    self.end_headers()
                    self.wfile.write(problem)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                proxy.record(self.command, path, answer.status, injected=False)
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = _handle  # noqa: N815 - the names http.server dispatches to

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def record(self, method: str, path: str, status: int, *, injected: bool) -> None:
        with self.lock:
            self.seen.append(Seen(method, path, status, time.monotonic(), injected))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server: RunningServer) -> Iterator[FaultProxy]:
    running = FaultProxy(server.port)
    try:
        yield running
    finally:
        running.close()


def sync(base: str, secret: str | None, store: Path, *args: str, client_id: str = PARTNER
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
    if secret is not None:
        env["CASEBRIDGE_CLIENT_SECRET"] = secret
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(SCRIPT), "--base-url", base, "--client-id", client_id, "--store", str(store), *args],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )


def granted_ids(server: RunningServer, client_id: str = PARTNER) -> set[str]:
    headers = {"Authorization": f"Bearer {server.token(client_id)}", "X-Purpose": "service_provision"}
    ids: set[str] = set()
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = httpx.get(f"{server.base}/v1/summaries", params=params, headers=headers).json()
        ids |= {item["id"] for item in page["items"]}
        if not page["next_cursor"]:
            return ids
        params["cursor"] = page["next_cursor"]


def stored(store: Path) -> dict[str, Any]:
    held: dict[str, Any] = json.loads(store.read_text())
    return held


def secret_of(server: RunningServer, client_id: str = PARTNER) -> str:
    secret: str = server.credentials(client_id)["client_secret"]
    return secret


class TestSync:
    def test_pulls_what_the_agreement_grants_into_a_private_store(self, server: RunningServer, tmp_path: Path) -> None:
        store = tmp_path / "summaries.json"
        run = sync(server.base, secret_of(server), store)
        assert run.returncode == 0, run.stderr
        expected = granted_ids(server)
        assert expected, "the demo network gives a partner summaries to sync"
        assert set(stored(store)["summaries"]) == expected
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        assert f"{len(expected)} summaries held" in run.stdout
        assert all(s["view"] == "referral.summary" and s["retain_until"] for s in stored(store)["summaries"].values())

        again = sync(server.base, secret_of(server), store)
        assert again.returncode == 0, again.stderr
        assert "(0 pulled" in again.stdout
        assert set(stored(store)["summaries"]) == expected

    def test_a_withdrawn_summary_is_deleted_on_the_next_sync(self, server: RunningServer, tmp_path: Path) -> None:
        store = tmp_path / "summaries.json"
        assert sync(server.base, secret_of(server), store).returncode == 0
        gone = sorted(stored(store)["summaries"])[0]
        coordinator = {"Authorization": f"Bearer {server.token('municipality-coordinator')}"}
        read = httpx.get(f"{server.base}/v1/referrals/{gone}",
                         headers={**coordinator, "X-Purpose": "safeguarding_assessment"})
        withdrawn = httpx.post(
            f"{server.base}/v1/referrals/{gone}/consent", headers={**coordinator, "If-Match": read.headers["ETag"]},
            json={"status": "withdrawn", "legal_basis": "public_task", "reason": "the person withdrew consent"},
        )
        assert withdrawn.status_code == 200, withdrawn.text

        run = sync(server.base, secret_of(server), store)
        assert run.returncode == 0, run.stderr
        assert gone not in stored(store)["summaries"]
        assert "1 withdrawn" in run.stdout


class TestResilience:
    def test_retries_503_and_429_after_retry_after_and_renews_a_refused_token(
        self, server: RunningServer, proxy: FaultProxy, tmp_path: Path
    ) -> None:
        proxy.faults += [Fault("GET", "/v1/summaries", 503, {"Retry-After": "1"}),
                         Fault("GET", "/v1/summaries", 429, {"Retry-After": "1"}),
                         Fault("GET", "/v1/summaries", 401)]
        store = tmp_path / "summaries.json"
        run = sync(proxy.base, secret_of(server), store)
        assert run.returncode == 0, run.stderr
        assert set(stored(store)["summaries"]) == granted_ids(server)

        calls = [(s.method, s.path, s.status) for s in proxy.seen]
        assert calls[:6] == [("POST", "/v1/token", 200), ("GET", "/v1/summaries", 503),
                             ("GET", "/v1/summaries", 429), ("GET", "/v1/summaries", 401),
                             ("POST", "/v1/token", 200), ("GET", "/v1/summaries", 200)]
        waits = [proxy.seen[i + 1].at - proxy.seen[i].at for i in (1, 2)]
        assert all(wait >= 0.95 for wait in waits), waits  # Retry-After: 1 honoured after the 503 and the 429
        assert run.stderr.count("retrying in 1 s") == 2
        assert "getting a new one" in run.stderr

    def test_renews_the_token_before_it_expires(
        self, server: RunningServer, proxy: FaultProxy, tmp_path: Path
    ) -> None:
        # Tokens last 60 s here; renewing 57 s before expiry means renewing after 3 s.
        run = sync(proxy.base, secret_of(server), tmp_path / "summaries.json",
                   "--rounds", "2", "--every", "4", "--renew-margin", str(TOKEN_TTL - 3))
        assert run.returncode == 0, run.stderr
        calls = [(s.method, s.path, s.status) for s in proxy.seen]
        assert all(status != 401 for _, _, status in calls)
        tokens = [i for i, (method, path, _) in enumerate(calls) if (method, path) == ("POST", "/v1/token")]
        reads = [i for i, (method, path, _) in enumerate(calls) if path == "/v1/summaries"]
        assert len(tokens) >= 2 and tokens[0] < reads[0]
        assert any(reads[0] < t < reads[-1] for t in tokens[1:]), calls  # a new token before the second sync

    def test_gives_up_after_the_retries_and_shows_the_problem(
        self, server: RunningServer, proxy: FaultProxy, tmp_path: Path
    ) -> None:
        proxy.faults += [Fault("GET", "/v1/summaries", 503, {"Retry-After": "0"}) for _ in range(3)]
        store = tmp_path / "summaries.json"
        run = sync(proxy.base, secret_of(server), store, "--max-retries", "2")
        assert run.returncode == 1
        assert "HTTP 503 Injected" in run.stderr and "injected 503" in run.stderr
        assert not store.exists()  # nothing half-synced is written


class TestErrors:
    def test_a_purpose_not_granted_shows_the_problem_details(self, server: RunningServer, tmp_path: Path) -> None:
        run = sync(server.base, secret_of(server), tmp_path / "s.json", "--purpose", "statistics")
        assert run.returncode == 1
        assert "HTTP 400" in run.stderr
        assert "service_provision" in run.stderr  # the purposes open to the caller
        assert "request id (quote it to the operator):" in run.stderr

    def test_a_disabled_client_is_told_why_it_gets_no_token(self, server: RunningServer, tmp_path: Path) -> None:
        client_id = "religious-council-reader"
        secret = secret_of(server, client_id)
        operator = {"Authorization": f"Bearer {server.token('municipality-operator')}"}
        disabled = httpx.post(f"{server.base}/v1/admin/clients/{client_id}/disable", headers=operator)
        assert disabled.status_code == 200, disabled.text
        run = sync(server.base, secret, tmp_path / "s.json", client_id=client_id)
        assert run.returncode == 1
        assert "could not get an access token" in run.stderr and "HTTP 401" in run.stderr
        assert secret not in run.stderr + run.stdout

    def test_the_secret_comes_only_from_the_environment(self, server: RunningServer, tmp_path: Path) -> None:
        run = sync(server.base, None, tmp_path / "s.json")
        assert run.returncode == 2 and "CASEBRIDGE_CLIENT_SECRET" in run.stderr
        on_command_line = sync(server.base, secret_of(server), tmp_path / "s.json", "--client-secret", "x")
        assert on_command_line.returncode == 2  # no such option

    def test_a_base_url_that_is_not_http_is_refused(self, server: RunningServer, tmp_path: Path) -> None:
        run = sync("file:///etc", secret_of(server), tmp_path / "s.json")
        assert run.returncode == 2 and "--base-url" in run.stderr
