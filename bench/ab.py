"""Two versions of the service side by side: one scenario in alternating runs, CPU per request of each.

This machine's speed drifts by up to 40 % within minutes, so a before/after pair run one after the
other measures the drift as much as the change. Here both versions serve at once, each on its own
copy of one seeded data directory, and take turns under wrk (A B, B A, A B, ...), so a drift falls
on both alike. The scenarios, the driver and the CPU meter are bench/load.py's.

    .venv/bin/python bench/load.py --db sqlite --referrals 2000 --scenarios hello --data-dir /tmp/seeded
    git worktree add /tmp/before <commit>
    .venv/bin/python bench/ab.py --data-dir /tmp/seeded --before /tmp/before --scenario disclosure
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadbench import ROOT
from loadbench.benchmark import demo_credentials
from loadbench.cpu import CpuMeter
from loadbench.runs import Load
from loadbench.scenarios import SCENARIOS, Scenarios
from loadbench.server import Server
from loadbench.wrk import run_wrk


@dataclass
class Side:
    name: str
    tree: Path
    server: Server
    url: str
    load: Load | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)


def one_run(side: Side, seconds: float, connections: int, work: Path) -> None:
    assert side.load is not None and side.server.proc is not None
    if side.load.idempotency_prefix is not None:  # a key never sent before: a create, not a replay
        side.load.idempotency_prefix = f"ab-{side.name}-{len(side.runs)}"
    meter = CpuMeter(side.server.proc.pid, side.server.base, side.url)
    meter.start()
    run = run_wrk(side.load, side.server.base, connections, seconds, 10**7, work / side.name)
    cost = meter.cost(run.requests)
    side.runs.append({"requests_per_s": run.requests_per_s, "p99_ms": run.latency_ms.get("p99"),
                      "errors": run.errors, **cost})


def summary(side: Side) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = [r[key] for r in side.runs if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "tree": str(side.tree),
        "server_cpu_ms_per_request": median("server_cpu_ms_per_request"),
        "requests_per_s": median("requests_per_s"),
        "p99_ms": median("p99_ms"),
        "audit_batch_mean": median("audit_batch_mean"),
        "errors": sum(r["errors"] for r in side.runs),
        "cpu_ms_per_request_by_run": [r["server_cpu_ms_per_request"] for r in side.runs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="A SQLite data directory bench/load.py seeded.")
    parser.add_argument("--before", type=Path, required=True, help="A checkout of the version to compare with.")
    parser.add_argument("--after", type=Path, default=ROOT, help="Default: this checkout.")
    parser.add_argument("--scenario", choices=SCENARIOS, default="disclosure")
    parser.add_argument("--rounds", type=int, default=6, help="Runs per side.")
    parser.add_argument("--seconds", type=float, default=4.0, help="Length of a run.")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    seeded = json.loads((args.data_dir / "seeded.json").read_text())
    credentials = demo_credentials(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="casebridge-ab-") as scratch:
        sides = []
        for name, tree in (("before", args.before), ("after", args.after)):
            data = Path(scratch) / name
            shutil.copytree(args.data_dir, data)
            url = f"sqlite:///{data / 'casebridge.db'}"
            server = Server(data, url, args.workers)
            server.env["PYTHONPATH"] = str(tree.resolve())  # this tree's `app`, whatever the venv installed
            sides.append(Side(name, tree, server, url))
        try:
            for side in sides:
                side.server.start()
                rng = random.Random(1)  # noqa: S311 - benchmark data, the same for both sides
                scenarios = Scenarios(side.server.base, credentials, seeded["referral_ids"], rng, side.name)
                side.load = scenarios.build(args.scenario)
            for round_ in range(args.rounds):
                for side in sides if round_ % 2 == 0 else reversed(sides):
                    one_run(side, args.seconds, args.concurrency, Path(scratch) / "wrk")
        finally:
            for side in sides:
                side.server.stop()
    before, after = (summary(side) for side in sides)
    ratio = None
    if before["server_cpu_ms_per_request"] and after["server_cpu_ms_per_request"]:
        ratio = round(after["server_cpu_ms_per_request"] / before["server_cpu_ms_per_request"], 3)
    print(json.dumps({"scenario": args.scenario, "concurrency": args.concurrency, "workers": args.workers,
                      "before": before, "after": after, "after_over_before_cpu": ratio}, indent=2))
    return 1 if before["errors"] or after["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
