"""SIGTERM under load on kept-alive connections: no request that reached the server goes unanswered.

Real processes: `casebridge serve --workers 2` on SQLite, 24 clients in threads on kept-alive
connections. A request may meet a refused connection (the server stopped listening: nothing was
sent) but never a reset, a close without a response, or a partial response.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.server import RunningServer

SHUTDOWN_TIMEOUT_S = 10
CLIENTS = 24  # more than the workers can take at once: some wait in the accept queue


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path / "data", "--shutdown-timeout", str(SHUTDOWN_TIMEOUT_S))
    try:
        yield running.start(workers=2)
    finally:
        running.stop()


def load(base: str, token: str, stop: threading.Event, outcomes: Counter[str], failures: list[str]) -> None:
    """Requests one after another on one kept-alive connection (a new one when the server closes it)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(max_connections=1)) as client:
        n = 0
        while not stop.is_set():
            n += 1
            path = "/healthz" if n % 2 else "/v1/me"
            try:
                response = client.get(path, headers=headers)
                response.read()  # the whole body, or an error
                outcomes[f"{response.status_code}"] += 1
            except httpx.ConnectError:
                outcomes["refused"] += 1  # not listening any more: the request was never sent
                time.sleep(0.02)
            except httpx.HTTPError as exc:
                outcomes["dropped"] += 1
                failures.append(f"{path}: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("to_group", [False, True], ids=["to-server", "to-process-group"])
def test_sigterm_under_load_answers_every_request_sent_and_exits_in_time(
    server: RunningServer, to_group: bool
) -> None:
    token = server.token("municipality-coordinator")
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    threads = [threading.Thread(target=load, args=(server.base, token, stop, outcomes, failures))
               for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        loaded_by = time.monotonic() + 30  # load on kept-alive connections (a busy machine is slower)
        while sum(outcomes.values()) < 300 and time.monotonic() < loaded_by:
            time.sleep(0.1)
        before = sum(outcomes.values())
        server.terminate(group=to_group)
        sent_at = time.monotonic()
        assert server.proc is not None
        exit_code = server.proc.wait(timeout=SHUTDOWN_TIMEOUT_S + 20)
        took = time.monotonic() - sent_at
        time.sleep(0.5)  # the clients see the refusals
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    print(f"outcomes {dict(outcomes)}; {before} before SIGTERM; exit {exit_code} after {took:.2f}s")
    assert failures == [], f"{len(failures)} requests dropped: {failures[:5]}"
    assert before >= 3 * CLIENTS and outcomes["200"] > before
    assert outcomes["refused"] > 0  # the load ran past the end
    assert exit_code == 0
    assert took < SHUTDOWN_TIMEOUT_S
    messages = [e["message"] for e in server.log_entries() if e.get("logger") == "casebridge.lifecycle"]
    assert messages.count("worker draining") == 2
    assert messages[-1] == "server stopped"
    stopped = [e for e in server.log_entries() if e.get("message") == "server stopped"][-1]
    assert stopped["clean"] is True and stopped["version"]
