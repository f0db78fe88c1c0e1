"""bench/load.py's CPU accounting (bench/loadbench/cpu.py): it reads what the kernel charged the server's
processes, and PostgreSQL's backends of the benchmark's database, across a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from loadbench.cpu import CpuMeter, cpu_seconds, postgres_backends  # noqa: E402

# Says "ready", waits for a line, burns 0.4 s of CPU, says "done", then idles.
BURN = (
    "import sys, time\nprint('ready', flush=True)\nsys.stdin.readline()\n"
    "end = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
    "print('done', flush=True)\ntime.sleep(30)\n"
)


def test_a_process_burning_cpu_is_charged_for_it_and_a_gone_one_is_none() -> None:
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        meter = CpuMeter(child.pid, "http://127.0.0.1:9", "sqlite:///unused.db")  # nothing listens on 9
        meter.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        cost = meter.cost(requests=100)
        assert 0.38 <= cost["server_cpu_s"] <= 0.7, cost
        assert cost["server_cpu_ms_per_request"] == pytest.approx(cost["server_cpu_s"] * 10, abs=0.1)
        assert cost["postgres_cpu_s"] is None and cost["audit_batch_mean"] is None  # SQLite, no metrics
    finally:
        child.kill()
        child.wait()
    assert cpu_seconds(child.pid) is None


def test_the_backends_of_the_benchmarks_database_are_found() -> None:
    url = os.environ.get("CASEBRIDGE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("needs CASEBRIDGE_TEST_POSTGRES_URL")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert pid in postgres_backends(url)
            other_database = make_url(url).set(database="postgres").render_as_string(hide_password=False)
            assert pid not in postgres_backends(other_database)
            assert cpu_seconds(pid) is not None or not Path(f"/proc/{pid}").exists()  # local server: readable
    finally:
        engine.dispose()
