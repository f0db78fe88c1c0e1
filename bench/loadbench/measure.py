"""The measured part: the server up, its memory sampled, each scenario driven at each concurrency."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import log
from .cpu import CpuMeter
from .httpx_driver import run_httpx
from .rss import RssSampler
from .runs import Load, Run
from .scenarios import Scenarios
from .server import Server
from .wrk import run_wrk

Runner = Callable[[Load, str, int, float, int, Path], Run]
WARMUP_CONNECTIONS = 8
IDLE_S = 1.0  # sampled as the idle size after start


@dataclass
class Plan:
    """Which scenarios, at which concurrencies, for how long, driven by what."""

    scenarios: list[str]
    levels: list[int]
    duration: float
    warmup: float
    max_requests: int
    driver: str

    def runner(self) -> Runner:
        return run_wrk if self.driver == "wrk" else run_httpx


@dataclass
class Measured:
    runs: list[Run]
    rss: dict[str, Any]


def measure(plan: Plan, server: Server, scenarios: Scenarios, work: Path) -> Measured:
    """Start the server, drive every scenario, and stop the server whatever happens."""
    runs: list[Run] = []
    sampler: RssSampler | None = None
    try:
        server.start()
        assert server.proc is not None
        log(f"server up on {server.base} with {server.workers} workers ({plan.driver} drives the load)")
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        sampler.phase = "idle"
        time.sleep(IDLE_S)
        for name in plan.scenarios:
            load = scenarios.build(name)
            meter = CpuMeter(server.proc.pid, server.base, server.env["CASEBRIDGE_DATABASE_URL"])
            runs += drive_scenario(plan, load, server.base, sampler, work / name, meter)
        sampler.phase = "end"
        sampler.sample()
    finally:
        if sampler is not None:
            sampler.stop()
        server.stop()
        log("server stopped")
    peaks = sampler.peaks if sampler else {}
    for run in runs:
        run.server_rss = peaks.get(f"{run.scenario}/{run.connections}", {})
    return Measured(runs, sampler.overall() if sampler else {})


def drive_scenario(
    plan: Plan, load: Load, base: str, sampler: RssSampler, work: Path, meter: CpuMeter
) -> list[Run]:
    """An unmeasured warm-up, then one run per concurrency level."""
    runner = plan.runner()
    if plan.warmup > 0:
        sampler.phase = f"{load.name}/warmup"
        runner(load, base, WARMUP_CONNECTIONS, plan.warmup, plan.max_requests, work / "warmup")
    runs = []
    for connections in plan.levels:
        sampler.phase = f"{load.name}/{connections}"
        meter.start()
        result = runner(load, base, connections, plan.duration, plan.max_requests, work / f"c{connections}")
        result.cost = meter.cost(result.requests)
        runs.append(result)
        postgres = result.cost["postgres_cpu_ms_per_request"]
        log(
            f"{load.name:15} c={connections:<3} {result.requests_per_s:9.1f} req/s  "
            f"p50 {result.latency_ms['p50']:8.2f} ms  "
            f"p99 {result.latency_ms['p99']:8.2f} ms  "
            f"cpu {result.cost['server_cpu_ms_per_request']} ms/req"
            + (f" (+{postgres} PostgreSQL)" if postgres is not None else "")
            + f"  batch {result.cost['audit_batch_mean']}  errors {result.errors}"
        )
    return runs
