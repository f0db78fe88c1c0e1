"""A flood of wrong-secret token requests against a live server: the service keeps answering.

The server is uvicorn in a thread of this process, serving a second app on the test's database
(the first, behind ``app_client``, seeds it). It has only two worker threads, so a token
endpoint that held a worker thread per attempt (the old scrypt, ~100 ms each) would queue
everything else behind the flood. Asserted here: /healthz, /readyz and a case read answer
200 *during* the flood, every flood request is a 401 or a 429, and the 429s carry
Retry-After. How fast they answer is measured in bench/token_flood.py, not asserted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app

FLOOD = 32
WAVES = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_threads": 2, "token_address_burst": 4, "token_client_burst": 2})


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """uvicorn serving `app` on a free loopback port, in a daemon thread; stopped on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        started = threading.Event()
        while not server.started and thread.is_alive():
            started.wait(0.05)
        assert server.started, "the live server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


async def _flood_and_probe(base: str, headers: dict[str, str], referral_id: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=FLOOD + 8, max_keepalive_connections=FLOOD + 8)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def attempt(index: int) -> httpx.Response:
            client_id = "school-north-referrer" if index % 2 else f"no-such-client-{index}"
            form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": f"wrong-{index}"}
            return await client.post("/v1/token", data=form)

        flood: list[httpx.Response] = []
        probes: list[httpx.Response] = []
        for _ in range(WAVES):
            wave = [asyncio.create_task(attempt(i)) for i in range(FLOOD)]
            await asyncio.sleep(0)  # the flood is in flight before the probes leave
            probes += await asyncio.gather(
                client.get("/healthz"),
                client.get("/readyz"),
                client.get(f"/v1/referrals/{referral_id}", headers=headers),
            )
            flood += await asyncio.gather(*wave)
        return {"flood": flood, "probes": probes}


def test_health_readiness_and_a_case_read_answer_during_a_token_flood(
    app_client: Any, settings: Settings, post_referral: Callable[..., dict[str, Any]],
    auth: Callable[..., dict[str, str]],
) -> None:
    referral = post_referral()
    headers = auth("school-north-referrer", **{"X-Purpose": "safeguarding_assessment"})
    with live_server(create_app(settings)) as base:
        result = asyncio.run(_flood_and_probe(base, headers, referral["id"]))

    assert [p.status_code for p in result["probes"]] == [200, 200, 200] * WAVES
    assert all(p.json()["id"] == referral["id"] for p in result["probes"][2::3])
    statuses = [r.status_code for r in result["flood"]]
    assert set(statuses) <= {401, 429}, statuses
    refused = [r for r in result["flood"] if r.status_code == 429]
    assert len(refused) >= FLOOD  # one address: at most a burst and its refill get through
    for response in refused:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"].isdigit() and int(response.headers["retry-after"]) >= 1
