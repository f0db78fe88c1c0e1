"""What a scenario sends (`Load`) and what one run of it measured (`Run`), for both drivers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Load:
    """What one scenario sends; both drivers read it the same way."""

    name: str
    method: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)  # Authorization: Bearer <one at random>
    bodies: list[str] = field(default_factory=list)  # POST bodies, taken in turn
    sequential: bool = False  # walk the paths in order from a random start (paging)
    idempotency_prefix: str | None = None  # a unique Idempotency-Key per request
    case_header: str | None = None  # a 200 carrying this header is a response with case data


@dataclass
class Run:
    scenario: str
    connections: int
    driver: str
    seconds: float
    requests: int
    requests_per_s: float
    latency_ms: dict[str, float]
    errors: int
    statuses: dict[str, int]
    transport_errors: dict[str, int]
    case_responses: int
    sent: int
    complete: bool  # every request sent got its response (nothing left in flight at the end)
    started_at: float
    ended_at: float
    server_rss: dict[str, Any] = field(default_factory=dict)  # peaks while this run lasted
    cost: dict[str, Any] = field(default_factory=dict)  # server (and PostgreSQL) CPU, log batch (cpu.py)


def bad_statuses(statuses: dict[str, int]) -> int:
    return sum(v for k, v in statuses.items() if not 200 <= int(k) < 400)
