"""The load benchmark behind bench/load.py: seed, serve, drive, sample, prove, report."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "bench" / "load.py"  # the command line; the httpx driver runs it with --drive
sys.path.insert(0, str(ROOT))  # the service's package, from this checkout


def log(message: str) -> None:
    sys.stderr.write(f"[load {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()
