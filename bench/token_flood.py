"""Token flood benchmark: /healthz and a case read, quiet and under 32 concurrent wrong-secret token requests.

Run from the repository root (prints one JSON document on stdout, progress on stderr):

    .venv/bin/python bench/token_flood.py                     # SQLite, 5 s per phase
    .venv/bin/python bench/token_flood.py --db postgres \\
        --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/cbflood   # its schema is dropped

Issue 12 found that 8-32 concurrent `POST /v1/token` with wrong secrets made `/healthz` take
6.1 s and case reads 1.6 s (scrypt at N=2^15 per attempt in the worker pool, no rate limit).
This starts `casebridge serve` (1 worker, default 8 threads) on a fresh data directory with
the demo network and one referral, then for each scenario measures, for `--duration` seconds
each, a sequential prober alternating `GET /healthz` and `GET /v1/referrals/{id}` (as the
referrer, `X-Purpose: safeguarding_assessment`): first quiet, then while a separate process
keeps `--flood` connections each sending wrong-secret token requests for the demo clients.

Scenarios (the server restarted between them, same database):
- `hmac_limits`: the service as shipped (HMAC secrets, default rate limits);
- `hmac_no_limits`: limits off (`CASEBRIDGE_TOKEN_*_PER_MINUTE=0`): what a flood from many
  addresses gets through — the verification alone is cheap;
- `scrypt_no_limits`: the flooded clients' hashes rewritten to legacy scrypt (cost 15), limits
  off: close to the service before issue 12;
- `scrypt_limits`: legacy hashes, default limits: the limits bound what scrypt costs.

Before/after: `--server-root DIR --scenarios hmac_limits` serves another checkout (e.g.
`git archive <commit> | tar -x -C DIR`); code from before issue 12 ignores the limit settings
and hashes with scrypt, so that run is the "before".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from loadbench.server import Server
from sqlalchemy import text, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

READER = "school-north-referrer"
NO_LIMITS = {"CASEBRIDGE_TOKEN_CLIENT_PER_MINUTE": "0", "CASEBRIDGE_TOKEN_ADDRESS_PER_MINUTE": "0"}
SCENARIOS: dict[str, tuple[bool, dict[str, str]]] = {  # name: (legacy scrypt hashes, extra environment)
    "hmac_limits": (False, {}),
    "hmac_no_limits": (False, NO_LIMITS),
    "scrypt_no_limits": (True, NO_LIMITS),
    "scrypt_limits": (True, {}),
}


def progress(message: str) -> None:
    print(f"[token_flood] {message}", file=sys.stderr, flush=True)


# -- the flood: its own process, so its client work does not slow the prober's loop ------------


def flood_process(base: str, targets: list[str], connections: int, seconds: float, out: Any) -> None:
    out.put(asyncio.run(_flood(base, targets, connections, seconds)))


async def _flood(base: str, targets: list[str], connections: int, seconds: float) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def one(worker: int) -> None:
            sent = 0
            while time.monotonic() < deadline:
                form = {"grant_type": "client_credentials", "client_id": targets[(worker + sent) % len(targets)],
                        "client_secret": f"wrong-{worker}-{sent}"}
                try:
                    status = str((await client.post("/v1/token", data=form)).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                statuses[status] = statuses.get(status, 0) + 1
                sent += 1

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(connections)))
        elapsed = time.monotonic() - started
    total = sum(statuses.values())
    return {"requests": total, "per_second": round(total / elapsed, 1), "statuses": statuses}


# -- the prober -----------------------------------------------------------------------------------


def probe(base: str, token: str, referral_id: str, seconds: float) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {"healthz": [], "case_read": []}
    bad: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "safeguarding_assessment"}
    deadline = time.monotonic() + seconds
    targets = (("healthz", "/healthz", {}), ("case_read", f"/v1/referrals/{referral_id}", headers))
    with httpx.Client(base_url=base, timeout=120) as client:
        while time.monotonic() < deadline:
            for name, path, extra in targets:
                started = time.perf_counter()
                status = client.get(path, headers=extra).status_code
                latencies[name].append((time.perf_counter() - started) * 1000)
                if status != 200:
                    bad[f"{name} {status}"] = bad.get(f"{name} {status}", 0) + 1
    return {name: summary(values) for name, values in latencies.items()} | {"non_200": bad}


def summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
        "max_ms": round(ordered[-1], 2),
    }


# -- setup ------------------------------------------------------------------------------------------


def credentials(data_dir: Path) -> dict[str, str]:
    rows = json.loads((data_dir / "demo-clients.json").read_text())
    return {r["client_id"]: r["client_secret"] for r in rows}


def token(base: str, client_id: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = httpx.post(f"{base}/v1/token", data=form, timeout=60)
    response.raise_for_status()
    return str(response.json()["access_token"])


def create_referral(base: str, bearer: str) -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.referrals import referral_body

    response = httpx.post(f"{base}/v1/referrals", json=referral_body(),
                          headers={"Authorization": f"Bearer {bearer}"}, timeout=60)
    response.raise_for_status()
    return str(response.json()["id"])


def make_legacy(url: str, secrets_by_client: dict[str, str], targets: list[str]) -> None:
    """Rewrite the flooded clients' hashes to the pre-issue-12 scrypt form (cost 15)."""
    from app.agencies.models import ApiClient
    from app.crypto.secrets import legacy_scrypt_hash
    from app.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        for client_id in targets:
            session.execute(update(ApiClient).where(ApiClient.id == client_id)
                            .values(secret_hash=legacy_scrypt_hash(secrets_by_client[client_id], 15)))
    engine.dispose()


def reset_postgres(url: str) -> None:
    from app.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def run_scenario(
    name: str, data_dir: Path, url: str, args: argparse.Namespace, state: dict[str, Any]
) -> dict[str, Any]:
    legacy, extra_env = SCENARIOS[name]
    if legacy:
        make_legacy(url, state["secrets"], state["targets"])
    server = Server(data_dir, url, workers=1)
    server.env.update(extra_env)
    if args.server_root:
        server.env["PYTHONPATH"] = str(args.server_root)
    progress(f"{name}: starting the server")
    server.start()
    try:
        bearer = token(server.base, READER, state["secrets"][READER])
        if "referral" not in state:
            state["referral"] = create_referral(server.base, bearer)
        progress(f"{name}: quiet, {args.duration} s")
        quiet = probe(server.base, bearer, state["referral"], args.duration)
        progress(f"{name}: flood of {args.flood}, {args.duration} s")
        results: Any = multiprocessing.get_context("spawn").Queue()
        flooder = multiprocessing.get_context("spawn").Process(
            target=flood_process, args=(server.base, state["targets"], args.flood, args.duration + 2.0, results))
        flooder.start()
        time.sleep(1.0)  # the flood is up before the prober starts
        flooded = probe(server.base, bearer, state["referral"], args.duration)
        flood = results.get(timeout=300)
        flooder.join(60)
    finally:
        server.stop()
    return {"quiet": quiet, "flood": flooded, "token_requests": flood}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--flood", type=int, default=32, help="concurrent wrong-secret token requests")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--server-root", type=Path, default=None,
                        help="serve another checkout (e.g. `git archive HEAD` unpacked): a before/after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cb-token-flood-") as tmp:
        data_dir = Path(tmp)
        if args.db == "postgres":
            if not args.pg_url:
                parser.error("--db postgres needs --pg-url")
            reset_postgres(args.pg_url)
            url = args.pg_url
        else:
            url = f"sqlite:///{data_dir / 'casebridge.db'}"
        seed = Server(data_dir, url, workers=1)
        if args.server_root:
            seed.env["PYTHONPATH"] = str(args.server_root)
        progress("seeding the demo network")
        seed.start()
        seed.stop()
        secrets_by_client = credentials(data_dir)
        state: dict[str, Any] = {"secrets": secrets_by_client,
                                 "targets": sorted(c for c in secrets_by_client if c != READER)}
        scenarios = {name: run_scenario(name, data_dir, url, args, state) for name in args.scenarios.split(",")}
    document = {
        "machine": {"nproc": multiprocessing.cpu_count(), "python": platform.python_version(), "database": args.db},
        "setup": {"duration_s": args.duration, "flood_connections": args.flood, "server": "casebridge serve, 1 worker",
                  "server_root": str(args.server_root or ROOT)},
        "scenarios": scenarios,
    }
    print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
