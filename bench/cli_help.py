"""How long `casebridge --help` (and `-h` on subcommands) takes, as an operator would run it.

Each run is a fresh process (the console script in the virtualenv), so the figure includes the
interpreter's start and every import the command module does at the top: the target is under a
second (issue 12); lazy imports in app/cli.py and app/*/cli.py keep it there. Prints one JSON
document (median, min, max wall seconds per command line); progress goes to stderr.

    .venv/bin/python bench/cli_help.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND_LINES = (
    ("--help",),
    ("-h",),
    ("--version",),
    ("db", "-h"),
    ("audit", "verify", "-h"),
    ("policy", "explain", "-h"),
    ("retention", "run", "-h"),
    ("keys", "rotate", "-h"),
)


def executable() -> list[str]:
    """The installed console script if there is one, else the module through this interpreter."""
    script = Path(sys.executable).with_name("casebridge")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def wall_seconds(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="Runs per command line (default 10).")
    args = parser.parse_args()
    env = {**os.environ, "COLUMNS": "100"}
    base = executable()
    wall_seconds([*base, "--help"], env)  # warm the page cache and the bytecode once
    results = {}
    for line in COMMAND_LINES:
        times = [wall_seconds([*base, *line], env) for _ in range(args.runs)]
        key = "casebridge " + " ".join(line)
        results[key] = {
            "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3),
            "max_s": round(max(times), 3),
        }
        print(f"{key}: median {results[key]['median_s']} s", file=sys.stderr)
    worst = max(r["median_s"] for r in results.values())
    print(json.dumps({"runs": args.runs, "target_s": 1.0, "worst_median_s": worst, "commands": results}, indent=2))


if __name__ == "__main__":
    main()
