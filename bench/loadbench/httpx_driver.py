"""The fallback driver: asyncio httpx users in a process of their own (bench/load.py --drive)."""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import ENTRY
from .runs import Load, Run, bad_statuses


def run_httpx(load: Load, base: str, connections: int, seconds: float, max_requests: int, work: Path) -> Run:
    """The fallback driver, in its own process (bench/load.py with --drive)."""
    work.mkdir(parents=True, exist_ok=True)
    spec = {
        "load": asdict(load),
        "base": base,
        "connections": connections,
        "seconds": seconds,
        "max_requests": max_requests,
    }
    (work / "spec.json").write_text(json.dumps(spec))
    started = time.time()
    out = subprocess.run(  # noqa: S603
        [sys.executable, str(ENTRY), "--drive", str(work / "spec.json")],
        capture_output=True,
        text=True,
        timeout=seconds + 180,
        check=True,
    )
    result = json.loads(out.stdout)
    result.update(started_at=started, ended_at=time.time())
    return Run(**result)


def drive(spec_path: str) -> None:
    """Entry point of the httpx driver process: one scenario at one concurrency, then JSON."""
    spec = json.loads(Path(spec_path).read_text())
    load = Load(**spec["load"])
    tally = Tally(quota=spec["max_requests"])
    users = Users(load, spec["base"], spec["connections"], tally)
    elapsed = asyncio.run(users.run(spec["seconds"]))
    sys.stdout.write(json.dumps(tally.result(load, spec["connections"], elapsed)) + "\n")


@dataclass
class Tally:
    """What the users of one run sent and got back."""

    quota: int
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    transport: dict[str, int] = field(default_factory=lambda: {"connect": 0, "read": 0, "write": 0, "timeout": 0})
    sent: int = 0
    case: int = 0

    def result(self, load: Load, connections: int, elapsed: float) -> dict[str, Any]:
        """The run as `Run`'s fields, less the wall-clock times the parent process adds."""
        self.latencies.sort()
        done_count = len(self.latencies)
        return {
            "scenario": load.name,
            "connections": connections,
            "driver": "httpx",
            "seconds": round(elapsed, 3),
            "requests": done_count,
            "requests_per_s": round(done_count / elapsed, 1),
            "latency_ms": {
                "p50": self.pct(50),
                "p90": self.pct(90),
                "p95": self.pct(95),
                "p99": self.pct(99),
                "p999": self.pct(99.9),
                "max": self.pct(100),
                "mean": round(sum(self.latencies) / max(1, done_count) * 1000, 2),
            },
            "errors": bad_statuses(self.statuses) + sum(self.transport.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "transport_errors": self.transport,
            "case_responses": self.case,
            "sent": self.sent,
            "complete": self.sent == done_count + sum(self.transport.values()),
        }

    def pct(self, p: float) -> float:
        """The p-th percentile latency in ms (the latencies sorted)."""
        latencies = self.latencies
        if not latencies:
            return 0.0
        return round(latencies[min(len(latencies) - 1, math.ceil(p / 100 * len(latencies)) - 1)] * 1000, 2)


@dataclass
class Users:
    """`connections` users on one keep-alive pool, each sending its next request on a response."""

    load: Load
    base: str
    connections: int
    tally: Tally

    async def run(self, seconds: float) -> float:
        limits = httpx.Limits(max_connections=self.connections, max_keepalive_connections=self.connections)
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=30) as client:
            began = time.monotonic()
            stop_at = began + seconds
            await asyncio.gather(*(self.user(client, uid, stop_at) for uid in range(self.connections)))
            return time.monotonic() - began

    async def user(self, client: httpx.AsyncClient, uid: int, stop_at: float) -> None:
        load, tally = self.load, self.tally
        rng = random.Random(uid)  # noqa: S311 - load pattern
        pos = rng.randrange(len(load.paths))
        n = 0
        while time.monotonic() < stop_at and tally.sent < tally.quota:
            tally.sent += 1
            n += 1
            if load.sequential:
                pos = (pos + 1) % len(load.paths)
                path = load.paths[pos]
            else:
                path = rng.choice(load.paths)
            headers, body = self.request(rng, uid, n)
            await self.send(client, path, headers, body)

    def request(self, rng: random.Random, uid: int, n: int) -> tuple[dict[str, str], bytes | None]:
        """Headers and body of this user's n-th request."""
        load = self.load
        headers = dict(load.headers)
        if load.tokens:
            headers["Authorization"] = f"Bearer {rng.choice(load.tokens)}"
        if load.idempotency_prefix:
            headers["Idempotency-Key"] = f"{load.idempotency_prefix}-c{self.connections}-{uid}-{n}"
        body = None
        if load.bodies:
            body = load.bodies[(n + uid * 997) % len(load.bodies)].encode()
            headers["Content-Type"] = "application/json"
        return headers, body

    async def send(self, client: httpx.AsyncClient, path: str, headers: dict[str, str], body: bytes | None) -> None:
        load, tally = self.load, self.tally
        began = time.perf_counter()
        try:
            response = await client.request(load.method, path, headers=headers, content=body)
        except httpx.TimeoutException:
            tally.transport["timeout"] += 1
            return
        except httpx.ConnectError:
            tally.transport["connect"] += 1
            return
        except httpx.HTTPError:
            tally.transport["read"] += 1
            return
        tally.latencies.append(time.perf_counter() - began)
        key = str(response.status_code)
        tally.statuses[key] = tally.statuses.get(key, 0) + 1
        if load.case_header and response.status_code == 200 and load.case_header in response.headers:
            tally.case += 1
