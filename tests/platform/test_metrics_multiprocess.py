"""Metrics from `casebridge serve --workers 2`: summed over the workers, never going backwards.

Real processes, on SQLite and (when configured) PostgreSQL: whichever worker answers a scrape,
it reports every worker's counts.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.server import RunningServer

from app import __version__

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
PURPOSE = "safeguarding_assessment"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path / "data", env={"CASEBRIDGE_DATABASE_URL": database_url})
    try:
        yield running.start(workers=2)
    finally:
        running.stop()


def samples(text: str) -> dict[str, float]:
    """Every sample line, by name and labels."""
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            found[match[1] + (match[2] or "")] = float(match[3])
    return found


def monotonic(name: str) -> bool:
    return name.endswith(("_total", "_count", "_sum", "_bucket"))


def test_counters_never_go_backwards_and_sum_every_worker(server: RunningServer, database_url: str) -> None:
    token = server.token("municipality-coordinator")
    reads = {"Authorization": f"Bearer {token}", "X-Purpose": PURPOSE}
    scrapes: list[dict[str, float]] = []
    healthz = 0
    for round_ in range(30):
        # A new connection per request: the kernel hands them to either worker.
        for _ in range(3):
            assert httpx.get(f"{server.base}/healthz").status_code == 200
            healthz += 1
        if round_ % 10 == 0:
            assert httpx.get(f"{server.base}/v1/referrals", headers=reads).status_code == 200
            junk = {**reads, "X-Purpose": f"not-a-purpose-{round_}"}
            assert httpx.get(f"{server.base}/v1/referrals", headers=junk).status_code == 400
        response = httpx.get(f"{server.base}/metrics")
        assert response.status_code == 200
        scrapes.append(samples(response.text))

    for before, after in zip(scrapes, scrapes[1:], strict=False):
        for series, value in before.items():
            if monotonic(series):
                assert after.get(series, 0.0) >= value, f"{series} went from {value} to {after.get(series)}"

    last = scrapes[-1]
    # Every worker's requests, whichever worker answered: exactly the ones sent.
    assert last['casebridge_http_requests_total{method="GET",route="/healthz",status="200"}'] == healthz
    assert any(k.startswith("casebridge_build_info{") and f'version="{__version__}"' in k for k in last)
    disclosures = {k: v for k, v in last.items() if k.startswith("casebridge_disclosures_total{")}
    assert any(f'purpose="{PURPOSE}"' in k and v >= 1 for k, v in disclosures.items()), disclosures
    denials = {k: v for k, v in last.items() if k.startswith("casebridge_denials_total{")}
    assert sum(denials.values()) >= 3
    text = "\n".join(last)
    assert "not-a-purpose" not in text  # a caller's text never becomes a label
    assert last.get("casebridge_audit_append_batch_size_count", 0) >= 1

    entries = server.log_entries()
    scraped_by = {e["pid"] for e in entries if e.get("message") == "request" and e.get("path") == "/metrics"}
    assert len(scraped_by) == 2  # both workers answered scrapes
    directory = Path(next(e["metrics_dir"] for e in entries if "metrics_dir" in e))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    started = [e for e in entries if e.get("message") == "worker started"]
    assert {e["database"] for e in started} == {database_url.split(":")[0].split("+")[0]}
    assert database_url.split("://", 1)[1] not in server.log()  # no host, user or password
    server.stop()
    assert not directory.exists()
