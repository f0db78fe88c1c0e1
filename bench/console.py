"""Console benchmark: server time of the console's pages at scale, against the API calls they make.

Run from the repository root (prints one JSON document on stdout, progress on stderr):

    .venv/bin/python bench/console.py                                # 10,000 referrals, 100,000 log entries
    .venv/bin/python bench/console.py --referrals 200 --entries 2000 --requests 30 --warmup 5   # a smoke run

SQLite always; PostgreSQL too when CASEBRIDGE_BENCH_POSTGRES_URL is set (its public schema is
dropped and rebuilt).

What it does, in order, for each database:

1. Seeds the referrals with bench/load.py's seeding (`loadbench.seed`: the demo network, referrals
   through the service layer, their notes and change entries), then appends read entries until
   the disclosure log holds `--entries`: what the API writes for a read (`disclose.read_event`
   for a permit, `disclose.denial_event` for a deny), from a real decision
   (`access.decide_referral`) of a demo client on a seeded referral for a purpose its
   agreements open to it, through `AuditLog.append_many` in batches of 2,000.
2. Creates two console people (`app.console.people.create_person`): a coordinator of
   city-municipality and an auditor of independent-auditor.
3. Builds the app (`app.main.create_app`, its lifespan run) and drives it in process through
   `httpx.ASGITransport`: each person signs in through the pages (password, then TOTP enrolment
   with pyotp, then the network's code of conduct), the coordinator chooses the purpose
   `safeguarding_assessment`.
4. For each scenario: `--warmup` unmeasured requests, then `--requests` measured ones, one at a
   time; per request the wall time (`time.perf_counter`) and the process's CPU time
   (`time.process_time`: every thread, so the API's thread pool and the log's committer too).
   For each page, the API calls the page made (recorded once from `app.console.web.Api.call`)
   are replayed as an API client would make them (the person's token, the same purpose and
   parameters), so the console's own cost (rendering, the in-process hop, the token per call)
   is the ratio of the two.

Scenarios (in this order: the log pages first, while the log holds `--entries`; every read of
case data adds entries, and a work list view adds one per referral listed):
`hello` (GET /healthz: the transport's floor), `audit_log` (GET /console/audit/log, the
auditor), `audit_log_deny` (GET /console/audit/log?decision=deny), `home` (GET /console/),
`referral` (GET /console/referrals/{id}), `worklist` (GET /console/worklist, the coordinator).
A page that answers anything but 200 is reported as `not_measured`.
A series stops early once it has taken `--budget` seconds (the work list at 10,000 referrals).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # loadbench (puts the repository root on the path)

import httpx  # noqa: E402
import pyotp  # noqa: E402
from loadbench.benchmark import data_directory  # noqa: E402
from loadbench.seed import demo_principals, seed_settings, seeded_database  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from app import access  # noqa: E402
from app.audit.events import AuditEvent  # noqa: E402
from app.audit.models import AuditEntry  # noqa: E402
from app.auth.principal import Principal  # noqa: E402
from app.bootstrap import build_state  # noqa: E402
from app.config import Settings  # noqa: E402
from app.console import people, web  # noqa: E402
from app.console.models import Person  # noqa: E402
from app.db import transaction  # noqa: E402
from app.disclose import ReadContext, denial_event, read_event  # noqa: E402
from app.main import create_app  # noqa: E402
from app.policy.engine import purposes_for  # noqa: E402
from app.referrals import snapshot  # noqa: E402
from app.referrals.models import Referral  # noqa: E402
from app.state import AppState  # noqa: E402

PASSWORD = "a long pass phrase for timing pages"  # noqa: S105 - bench people only, scratch data
COORDINATOR = ("bench-coordinator", "city-municipality", "Bench Coordinator", ["coordinator"])
AUDITOR = ("bench-auditor", "independent-auditor", "Bench Auditor", ["auditor"])
PURPOSE = "safeguarding_assessment"
NETWORK = "demo-city"
BATCH = 2000  # log entries per transaction when topping the log up
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
CONDUCT = re.compile(r'name="(code:[^"]+)" value="([^"]+)"')
ROWS = re.compile(r"<tr[\s>]|<li class=\"entry[\s\"]")  # table rows, entries of the log's timeline
READ_ROLES = frozenset({"coordinator", "caseworker", "referrer", "partner_reader"})


def log(message: str) -> None:
    sys.stderr.write(f"[console {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# -- the data -------------------------------------------------------------------------------------


def log_size(state: AppState) -> int:
    with state.read_sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def grow_log(settings: Settings, target: int, rng: random.Random) -> dict[str, Any]:
    """Read entries (permits and denies, as the API writes them) until the log holds `target`."""
    state = build_state(settings)
    try:
        before = log_size(state)
        added = {"permit": 0, "deny": 0}
        if before >= target:
            return {"before": before, "after": before, "added": added, "seconds": 0.0}
        started = time.perf_counter()
        with state.read_sessions() as session:
            referrals = snapshot.load_where(session, Referral.id.is_not(None), [Referral.id], 1_000_000)
        policies, today = state.policies.current, datetime.now(UTC).date()
        readers = [p for p in demo_principals().values() if p.roles & READ_ROLES]
        opened = {p.client_id: purposes_for(policies, access.caller(p, access.ALL_RELATIONS), today)
                  for p in readers}
        readers = [p for p in readers if opened[p.client_id]]
        size = before
        while size < target:
            events = [read_entry(rng, rng.choice(referrals), readers, opened, policies, today)
                      for _ in range(min(BATCH, target - size))]
            for event in events:
                added[event.decision or "permit"] += 1
            with transaction(state.sessions) as session:
                state.audit.append_many(session, events)
            size += len(events)
        with state.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        return {"before": before, "after": size, "added": added,
                "seconds": round(time.perf_counter() - started, 1)}
    finally:
        state.engine.dispose()


def read_entry(rng: random.Random, referral: Any, readers: list[Principal], opened: Mapping[str, list[str]],
               policies: Any, today: Any) -> AuditEvent:
    """What the API logs when `reader` asks for `referral` for one of its purposes: a read or a denial.

    Three reads in four come from an agency involved (the coordinator, the referrer, an assignee),
    the rest from any reader of the network: those are the denials an auditor filters for."""
    involved = [p for p in readers if p.agency_id in {referral.referring_agency, *referral.assigned_agencies}
                or "coordinator" in p.roles and p.agency_id == "city-municipality"]
    reader = rng.choice(involved if involved and rng.random() < 0.75 else readers)
    purpose = rng.choice(opened[reader.client_id])
    ctx = ReadContext(reader, purpose, None, f"{rng.getrandbits(128):032x}")
    decision = access.decide_referral(policies, reader, referral, purpose, None, today)
    if not decision.permit:
        return denial_event(ctx, reason=f"Not granted for purpose {purpose!r}: {decision.reason}.", decision=decision,
                            owner_agency=referral.referring_agency, subject_id=referral.subject_id,
                            record_ids={"referral_id": referral.id})
    grant = access.grant_for(decision, reader, referral.referring_agency, purpose)
    return read_event(ctx, grant, owner_agency=referral.referring_agency, subject_id=referral.subject_id,
                      record_ids={"referral_id": referral.id}, fields=decision.fields)


def add_people(settings: Settings) -> None:
    state = build_state(settings)
    try:
        with transaction(state.sessions) as session:
            for person_id, agency, name, roles in (COORDINATOR, AUDITOR):
                if session.get(Person, person_id) is None:
                    people.create_person(session, person_id=person_id, agency_id=agency, name=name, roles=roles,
                                         password=PASSWORD)
    finally:
        state.engine.dispose()


# -- the browsers ---------------------------------------------------------------------------------


class Browser:
    """One person's browser on the app, in process: its cookies, the CSRF token of the last page."""

    def __init__(self, app: Any, state: AppState, secrets: Path) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        self.secrets = secrets  # the people's TOTP secrets, for a reused data directory
        self.http = httpx.AsyncClient(transport=transport, base_url="https://testserver", follow_redirects=True)
        self.state = state
        self.csrf = ""
        self.secret: str | None = None

    async def get(self, path: str) -> httpx.Response:
        return self._seen(await self.http.get(path))

    async def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._seen(await self.http.post(path, data={"csrf": self.csrf, **data}))

    def _seen(self, response: httpx.Response) -> httpx.Response:
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        secret = SECRET.search(response.text)
        if secret:
            self.secret = secret.group(1)
        return response

    async def sign_in(self, person_id: str) -> None:
        await self.get("/console/sign-in")
        response = await self.post("/console/sign-in", {"person": person_id, "password": PASSWORD, "next": "/console/"})
        step = response.url.path.rsplit("/", 1)[-1]
        known = json.loads(self.secrets.read_text()) if self.secrets.exists() else {}
        if step == "enrol":
            assert self.secret is not None, "no TOTP secret on the enrolment page"
            known[person_id] = self.secret
            self.secrets.write_text(json.dumps(known))
            code = pyotp.TOTP(self.secret).at(self.state.clock().timestamp())
            response = await self.post("/console/sign-in/enrol", {"code": code})
        elif step == "second-factor":  # a reused data directory: enrolled by an earlier run
            # The next step's code (a neighbour is accepted), so not the one an earlier run just used.
            code = pyotp.TOTP(known[person_id]).at(self.state.clock().timestamp() + 30)
            response = await self.post("/console/sign-in/second-factor", {"code": code})
        if response.url.path == "/console/conduct":  # the network's code of conduct, accepted once per version
            codes = dict(CONDUCT.findall(response.text))
            response = await self.post("/console/conduct", {**codes, "next": "/console/"})
        if response.status_code != 200 or response.url.path != "/console/":
            raise RuntimeError(f"{person_id} could not sign in: {response.status_code} {response.url}")

    async def choose_purpose(self, purpose: str) -> None:
        await self.get("/console/purpose")
        response = await self.post("/console/purpose", {"purpose": purpose, "next": "/console/"})
        if response.status_code != 200:
            raise RuntimeError(f"purpose {purpose} refused: {response.status_code}")


@dataclass(frozen=True)
class Call:
    """One API call a page made: replayed as an API client makes it."""

    method: str
    path: str
    purpose: str | None
    params: Mapping[str, Any] | None
    status: int = 0
    items: int | None = None  # the items of a listing the page got

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "purpose": self.purpose,
                "params": {k: v for k, v in (self.params or {}).items() if v not in (None, "")},
                "status": self.status, "items": self.items}


@contextmanager
def recording(calls: list[Call]) -> Iterator[None]:
    """Note every call a page makes through `visit.api` (the only way a page reaches the API)."""
    original = web.Api.call

    async def call(self: web.Api, method: str, path: str, **kwargs: Any) -> web.Reply:
        reply = await original(self, method, path, **kwargs)
        items = reply.body.get("items") if isinstance(reply.body, dict) else None
        calls.append(Call(method, path, kwargs.get("purpose"), kwargs.get("params"), reply.status,
                          len(items) if isinstance(items, list) else None))
        return reply

    web.Api.call = call  # type: ignore[method-assign]
    try:
        yield
    finally:
        web.Api.call = original  # type: ignore[method-assign]


class ApiClient:
    """An API client holding the token the console would issue for the person (client and act: the person)."""

    def __init__(self, app: Any, state: AppState, person: tuple[str, str, str, list[str]]) -> None:
        person_id, agency, _, roles = person
        sector = next(p.sector for p in demo_principals().values() if p.agency_id == agency)
        token, _ = state.tokens.issue(client_id=person_id, agency_id=agency, sector=sector, roles=sorted(roles),
                                      act=person_id)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50001))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://api.internal",
                                      headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    async def replay(self, calls: list[Call]) -> tuple[int, int]:
        worst, size = 200, 0
        for c in calls:
            headers = {"X-Purpose": c.purpose} if c.purpose else {}
            params = {k: v for k, v in (c.params or {}).items() if v not in (None, "")}
            answer = await self.http.request(c.method, c.path, params=params, headers=headers)
            worst = max(worst, answer.status_code)
            size += len(answer.content)
        return worst, size


# -- measuring ------------------------------------------------------------------------------------


def nearest_rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(walls: list[float], cpus: list[float]) -> dict[str, Any]:
    ordered = sorted(walls)
    return {
        "requests": len(walls),
        "median_ms": round(statistics.median(walls) * 1000, 2),
        "p95_ms": round(nearest_rank(ordered, 0.95) * 1000, 2),
        "p99_ms": round(nearest_rank(ordered, 0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(walls) * 1000, 2),
        "cpu_ms_mean": round(statistics.fmean(cpus) * 1000, 2),
        "cpu_ms_median": round(statistics.median(cpus) * 1000, 2),
    }


async def timed(fn: Callable[[], Awaitable[tuple[int, int]]], requests: int, warmup: int,
                state: AppState, budget: float) -> dict[str, Any]:
    """`requests` measured after `warmup`, or fewer when the series has taken `budget` seconds."""
    started = time.perf_counter()
    for _ in range(warmup):
        await fn()
        if time.perf_counter() - started > budget / 10:
            break
    entries = log_size(state)
    walls: list[float] = []
    cpus: list[float] = []
    statuses: dict[str, int] = {}
    size = 0
    started = time.perf_counter()
    for _ in range(requests):
        if walls and time.perf_counter() - started > budget:
            break
        cpu, wall = time.process_time(), time.perf_counter()
        status, size = await fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    after = log_size(state)
    return {**summary(walls, cpus), "statuses": statuses, "response_bytes": size,
            "log_entries_at_start": entries,
            "log_entries_written_per_request": round((after - entries) / len(walls), 1)}


@dataclass
class Scenario:
    name: str
    who: str  # "coordinator" or "auditor" (or "" for hello)
    path: str
    api_named: list[str] = field(default_factory=list)  # the API call the issue names, measured alone too


SCENARIOS = [
    Scenario("hello", "", "/healthz"),
    Scenario("audit_log", "auditor", "/console/audit/log", ["/v1/audit/entries"]),
    Scenario("audit_log_deny", "auditor", "/console/audit/log?decision=deny", ["/v1/audit/entries"]),
    Scenario("home", "coordinator", "/console/"),
    Scenario("referral", "coordinator", "/console/referrals/{referral_id}"),
    Scenario("worklist", "coordinator", "/console/worklist", [f"/v1/networks/{NETWORK}/worklist"]),
]


async def measure(settings: Settings, options: argparse.Namespace, referral_id: str) -> dict[str, Any]:
    secrets = settings.data_dir / "bench-console-totp.json"
    app = create_app(settings)
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        state: AppState = app.state.cb
        browsers = {"coordinator": Browser(app, state, secrets), "auditor": Browser(app, state, secrets)}
        await browsers["coordinator"].sign_in(COORDINATOR[0])
        await browsers["coordinator"].choose_purpose(PURPOSE)
        await browsers["auditor"].sign_in(AUDITOR[0])
        apis = {"coordinator": ApiClient(app, state, COORDINATOR), "auditor": ApiClient(app, state, AUDITOR)}
        bare = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://api.internal")
        for scenario in SCENARIOS:
            if scenario.name not in options.scenarios:
                continue
            path = scenario.path.format(referral_id=referral_id)
            if not scenario.who:
                async def hello(path: str = path) -> tuple[int, int]:
                    answer = await bare.get(path)
                    return answer.status_code, len(answer.content)
                log(f"{scenario.name}: {options.requests} × GET {path}")
                out[scenario.name] = {"path": path, "page": await timed(hello, options.requests, options.warmup,
                                                                            state, options.budget)}
                continue
            out[scenario.name] = await page_scenario(scenario, path, browsers[scenario.who], apis[scenario.who],
                                                     state, options)
        for client in [*(b.http for b in browsers.values()), *(a.http for a in apis.values()), bare]:
            await client.aclose()
    return out


async def page_scenario(scenario: Scenario, path: str, browser: Browser, api: ApiClient, state: AppState,
                        options: argparse.Namespace) -> dict[str, Any]:
    calls: list[Call] = []
    with recording(calls):
        probe = await browser.get(path)
    if probe.status_code != 200 or probe.url.path != path.split("?")[0]:
        log(f"{scenario.name}: GET {path} answered {probe.status_code} ({probe.url.path}): not measured")
        return {"path": path, "not_measured": True, "status": probe.status_code, "landed_on": probe.url.path}
    rows = len(ROWS.findall(probe.text))

    async def page() -> tuple[int, int]:
        answer = await browser.http.get(path)
        return answer.status_code, len(answer.content)

    async def replay() -> tuple[int, int]:
        return await api.replay(calls)

    log(f"{scenario.name}: {options.requests} × GET {path} ({len(calls)} API calls, {rows} rows on the page)")
    result: dict[str, Any] = {"path": path, "rows_on_page": rows, "api_calls": [c.to_dict() for c in calls]}
    result["page"] = await timed(page, options.requests, options.warmup, state, options.budget)
    if calls:
        log(f"{scenario.name}: {options.requests} × the page's {len(calls)} API calls")
        result["api"] = await timed(replay, options.requests, options.warmup, state, options.budget)
        named = [c for c in calls if c.path in scenario.api_named][:1]
        if named and len(calls) > 1:
            async def alone() -> tuple[int, int]:
                return await api.replay(named)

            log(f"{scenario.name}: {options.requests} × {named[0].path} alone")
            result["api_named_alone"] = await timed(alone, options.requests, options.warmup, state, options.budget)
        result["ratio_page_to_api"] = {
            k: round(result["page"][k] / result["api"][k], 2) if result["api"][k] else None
            for k in ("median_ms", "p99_ms", "cpu_ms_mean")}
        result["console_own_ms"] = {
            k: round(result["page"][k] - result["api"][k], 2) for k in ("median_ms", "cpu_ms_mean")}
    return result


# -- the run --------------------------------------------------------------------------------------


def machine(url: str) -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu_model": model or None, "python": platform.python_version(),
            "platform": platform.platform(), "database": url.split(":", 1)[0],
            "sqlite": sqlite3.sqlite_version if url.startswith("sqlite") else None,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def run_backend(name: str, data_dir: Path, url: str, options: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(options.seed)  # noqa: S311 - benchmark data
    seeded, reused = seeded_database(data_dir, name, url, options.referrals, rng)
    settings = seed_settings(data_dir, url)
    log(f"{name}: topping the log up to {options.entries} entries")
    grown = grow_log(settings, options.entries, rng)
    log(f"{name}: log {grown['before']} → {grown['after']} entries in {grown['seconds']} s")
    add_people(settings)
    result: dict[str, Any] = {
        "machine": machine(url),
        "data": {"referrals": seeded.referrals, "notes": seeded.notes, "subjects": seeded.subjects,
                 "by_status": seeded.by_status, "log_entries_seeded": seeded.log_entries,
                 "log_entries_before_measuring": grown["after"], "read_entries_added": grown["added"],
                 "reused_seeded_database": reused},
        "setup": {"requests": options.requests, "warmup": options.warmup, "budget_s": options.budget,
                  "driver": "httpx.ASGITransport, in process",
                  "coordinator_purpose": PURPOSE, "percentiles": "nearest rank"},
    }
    started = time.perf_counter()
    result["scenarios"] = asyncio.run(measure(settings, options, seeded.referral_ids[len(seeded.referral_ids) // 2]))
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["measuring_seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--referrals", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100_000, help="Log entries before measuring.")
    parser.add_argument("--requests", type=int, default=200, help="Measured requests per scenario.")
    parser.add_argument("--warmup", type=int, default=20, help="Unmeasured requests before each scenario.")
    parser.add_argument("--budget", type=float, default=180.0,
                        help="Seconds per measured series: a slower page gets fewer than --requests "
                             "(and its warm-up a tenth of this).")
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--data-dir", type=Path, help="Reuse (or keep) the data seeded here: for profiling.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary data directory.")
    parser.add_argument("--output", type=Path, help="Also write the document here.")
    options = parser.parse_args()
    options.scenarios = set(options.scenarios.split(","))
    report: dict[str, Any] = {}
    with data_directory(options.data_dir, options.keep, prefix="casebridge-console-") as data_dir:
        sqlite_dir = data_dir / "sqlite"
        sqlite_dir.mkdir(exist_ok=True)
        report["sqlite"] = run_backend("sqlite", sqlite_dir, f"sqlite:///{sqlite_dir / 'casebridge.db'}", options)
        pg = os.environ.get("CASEBRIDGE_BENCH_POSTGRES_URL")
        if pg:
            pg_dir = data_dir / "postgres"
            pg_dir.mkdir(exist_ok=True)
            report["postgresql"] = run_backend("postgres", pg_dir, pg, options)
    document = json.dumps(report, indent=2)
    sys.stdout.write(document + "\n")
    if options.output:
        options.output.write_text(document + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
