"""Load benchmark: the running service, seeded with 10,000 referrals, under wrk (or httpx).

Run from the repository root (prints one JSON document on stdout, progress on stderr):

    .venv/bin/python bench/load.py --db sqlite --workers 2
    .venv/bin/python bench/load.py --db postgres --workers 4 \\
        --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/cbload   # its schema is dropped

What it does, in order: seeds a fresh database in-process through the service layer (the demo
network, then referrals moved along the lifecycle, with notes and their disclosure-log
entries); starts `casebridge serve --workers N` on a free loopback port with the bench-only
bare-read switch on; drives each scenario at each concurrency from a separate process (wrk
when installed, else an asyncio httpx client), every run bounded in time and request count
and stopping by itself with no request left in flight; samples the server's RSS; stops the
server (always); then counts disclosure responses against the log and runs
`casebridge audit verify --json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIOS = ("hello", "bare_read", "disclosure", "summaries_sync", "post_referral")
LEVELS = (1, 8, 32, 64)
READER = "municipality-coordinator"  # reads every referral; none are its agency's: all disclosures
READER_AGENCY = "city-municipality"
PARTNER = "youth-ngo-reader"
TARGETS = {
    "disclosure_over_bare_read_min": 0.8,
    "disclosure_over_hello_min": 0.4,
    "disclosure_p99_ms_max_at_32": 50.0,
    "rss_mb_per_worker_max": 200.0,
}
RATIO_LEVEL = 32


def log(message: str) -> None:
    sys.stderr.write(f"[load {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# -- realistic data --------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return text.split()


def table(text: str) -> list[tuple[str, int]]:
    """'code:weight code:weight …' as (code, weight) pairs."""
    return [(code, int(weight)) for code, weight in (item.split(":") for item in words(text))]


DISTRICTS = table(
    "old-town:14 al-mina:12 harbour:10 north-hills:9 market-quarter:9 riverside:8 east-gate:8 "
    "university:7 new-town:7 industrial-zone:6 garden-quarter:5 airport-road:5"
)
GIVEN = words(
    "Yasmin Omar Lina Karim Mira Elena Stefan Aida Bojan Nour Hadi Sara Ivana Jovan Layla Rami Ana Dino Fatima Samir"
)
FAMILY = words(
    "Haddad Petrovski Khalil Nikolovska Mansour Saleh Trajkovski Aziz Stojanova Farah Ristovski "
    "Nasser Bakri Georgieva Jaber Ilievski"
)
CONCERNS = table(
    "online_radicalisation_exposure:18 hate_speech:12 school_conflict:11 polarisation_conflict:9 "
    "self_isolation_grievance:9 family_concern:8 extremist_ideology_expressed:8 "
    "glorification_of_violence:6 recruitment_contact:6 hate_incident:5 threat_of_violence:4 "
    "returning_foreign_fighter_or_family:2 other:2"
)
VULNERABILITY = words(
    "social_isolation family_conflict school_dropout peer_influence online_extremist_content "
    "experience_of_discrimination grievance_injustice identity_crisis mental_health_concern "
    "poverty_economic_hardship unemployment exposure_to_violence substance_use displacement"
)
PROTECTIVE = words(
    "supportive_family school_engagement trusted_adult positive_peer_group "
    "sports_or_arts_participation community_belonging motivation_to_change "
    "critical_thinking_skills access_to_services religious_or_cultural_mentor"
)
SERVICES = words(
    "mentoring psychosocial_support family_support education_support sports_and_youth_programme "
    "counter_narrative_dialogue vocational_training employment_support religious_guidance "
    "health_referral social_welfare_assistance"
)
INTERVENTIONS = words(
    "individual_mentoring family_intervention multi_agency_case_plan psychosocial_care "
    "group_programme community_dialogue education_or_employment_pathway monitoring_only"
)
RISK = table("low:34 medium:36 high:22 critical:8")
URGENCY = table("routine:45 priority:35 urgent:15 immediate:5")
CONSENT = table("given:62 not_required:14 pending:10 not_sought:8 refused:6")
OUTCOMES = words(
    "risk_reduced engaged_completed no_further_action concern_not_substantiated declined_support "
    "referred_elsewhere moved_away disengaged"
)
# Where referrals end up; partners see the consented accepted, assigned and in_intervention ones.
FINAL_STATUS = table(
    "submitted:12 triaged:8 declined:5 withdrawn:3 accepted:12 assigned:25 in_intervention:20 closed:12 transferred:3"
)
REFERRERS = [
    ("school-north-referrer", 25),
    ("school-south-referrer", 20),
    ("social-services-caseworker", 20),
    ("health-centre-caseworker", 15),
    ("community-police-caseworker", 12),
]
CASEWORKERS = {  # agency -> its caseworker client (who starts interventions, writes notes)
    "city-social-services": "social-services-caseworker",
    "city-health-centre": "health-centre-caseworker",
    "youth-ngo-bridges": "youth-ngo-caseworker",
    "city-community-police": "community-police-caseworker",
    "school-north": "school-north-referrer",
    "school-south": "school-south-referrer",
}
NOTE_CLASSES = {
    "education": ["shared", "shared", "education"],
    "health": ["shared", "health", "health"],
    "police": ["shared", "police"],
    "social_services": ["shared", "social_care", "restricted"],
    "local_government": ["shared", "restricted"],
    "youth_work": ["shared"],
}
SENTENCES = [
    "Staff noticed a marked change in behaviour over the last term.",
    "The young person shared videos glorifying violence with classmates.",
    "Family report withdrawal from friends and long hours online at night.",
    "A teacher overheard remarks targeting a religious minority.",
    "Attendance dropped sharply after a conflict with peers.",
    "The person expressed grievance about discrimination experienced by the family.",
    "Contact with an older adult recruiting online was reported by a sibling.",
    "The person is engaged with sport and responds well to a trusted coach.",
    "Parents are supportive and ask for guidance on next steps.",
    "No immediate risk of harm was identified at this stage.",
]


def weighted(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def prose(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.sample(SENTENCES, rng.randint(low, high)))


def referral_document(rng: random.Random, person: int, now: datetime) -> dict[str, Any]:
    """A referral/v1 body as a partner agency would post it, varied but always valid."""
    people = random.Random(person)  # noqa: S311 - benchmark data: a person is always the same person
    age_days = people.randint(11 * 365, 24 * 365)
    consent = weighted(rng, CONSENT)
    subject: dict[str, Any] = {
        "given_name": people.choice(GIVEN),
        "family_name": people.choice(FAMILY),
        "date_of_birth": (now - timedelta(days=age_days)).date().isoformat(),
        "gender": people.choice(["female", "male", "male", "female", "unknown"]),
        "district": weighted(people, DISTRICTS),
        "identifiers": [{"system": "national_id", "value": f"BN-{person:08d}"}],
        "language": people.choice(["ar", "mk", "sq", "en"]),
    }
    if people.random() < 0.6:
        subject["phone"] = f"+961-70-{people.randint(100000, 999999)}"
    if people.random() < 0.4:
        subject["address"] = f"{people.randint(1, 200)} {subject['district'].title()} Street"
    body: dict[str, Any] = {
        "schema": "referral/v1",
        "subject": subject,
        "concerns": sorted({weighted(rng, CONCERNS) for _ in range(rng.randint(1, 3))}),
        "vulnerability_factors": rng.sample(VULNERABILITY, rng.randint(0, 4)),
        "protective_factors": rng.sample(PROTECTIVE, rng.randint(0, 3)),
        "risk_level": weighted(rng, RISK),
        "urgency": weighted(rng, URGENCY),
        "consent": {"status": consent, "recorded_by": "referring practitioner"},
        "requested_services": rng.sample(SERVICES, rng.randint(1, 3)),
        "intervention_type": rng.choice(INTERVENTIONS),
        "narrative": prose(rng, 2, 6),
        "do_not_contact": rng.random() < 0.05,
    }
    if consent != "given":
        body["consent"]["legal_basis"] = "public_task"
    return body


@dataclass
class Seeded:
    referral_ids: list[str]
    referrals: int
    notes: int
    subjects: int
    log_entries: int
    by_status: dict[str, int]
    seconds: float


def reset_postgres(url: str) -> None:
    from sqlalchemy import text

    from app.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def seed(settings: Any, count: int, rng: random.Random) -> Seeded:
    """Demo network, then `count` referrals through the service layer, each change logged."""
    from sqlalchemy import func, select, text

    from app.agencies.schemas import Sector
    from app.audit.events import EventType
    from app.audit.models import AuditEntry
    from app.auth.principal import Principal
    from app.bootstrap import build_state, seed_demo_if_empty
    from app.db import transaction
    from app.demo import DEMO_AGENCIES, DEMO_CLIENTS
    from app.disclose import change_event, paths_of
    from app.notes import service as notes
    from app.notes.schemas import NoteIn
    from app.referrals import service as referrals
    from app.referrals.schemas import TransitionIn
    from app.retention.dates import RetentionRules
    from app.subjects.models import Subject

    started = time.perf_counter()
    state = build_state(settings)
    seed_demo_if_empty(state)
    sectors: dict[str, Sector] = {a: s for a, _, s in DEMO_AGENCIES}
    principals = {
        cid: Principal(
            client_id=cid,
            agency_id=agency,
            sector=sectors[agency].value,
            roles=frozenset(r.value for r in roles),
            act=None,
            token_id="bench-seed",  # noqa: S106 - not a secret
        )
        for cid, agency, _, roles in DEMO_CLIENTS
    }
    coordinator = principals[READER]
    crypto = referrals.Crypto(state.envelope, state.blind_index)
    rules = RetentionRules.of(state.policies.current, state.settings.max_open_retention)
    end = datetime.now(UTC) - timedelta(hours=2)
    start = end - timedelta(days=180)
    ids: list[str] = []
    by_status: dict[str, int] = {}
    note_count = 0
    persons = 0
    batch = 100
    for first in range(0, count, batch):
        events = []
        with transaction(state.sessions) as session:
            for i in range(first, min(first + batch, count)):
                at = start + (end - start) * (i / count)
                # One in eight referrals is about someone referred before (linked by identifier).
                if persons and rng.random() < 0.12:
                    person = rng.randrange(persons)
                else:
                    person, persons = persons, persons + 1
                referrer = principals[weighted(rng, REFERRERS)]
                body = referral_document(rng, person, at)
                referral = referrals.create(session, crypto, referrer, body, at, retention=rules)
                events.append(
                    change_event(
                        referrer,
                        EventType.create,
                        subject_id=referral.subject_id,
                        record_ids={"referral_id": referral.id},
                        request_id=None,
                        fields=sorted(paths_of(body)),
                    )
                )
                final = weighted(rng, FINAL_STATUS)
                steps = lifecycle(rng, final, referrer.agency_id)
                for k, (target, actor, extra) in enumerate(steps):
                    who = (
                        coordinator
                        if actor == "coordinator"
                        else referrer
                        if actor == "referrer"
                        else principals[CASEWORKERS[referral.assigned_agencies[0]]]
                    )
                    when = at + timedelta(hours=6 * (k + 1))
                    source = referral.status
                    referral = referrals.transition(
                        session,
                        who,
                        referral.id,
                        TransitionIn(to=target, **extra),
                        None,
                        when,
                        retention=rules,
                    )
                    events.append(
                        change_event(
                            who,
                            EventType.transition,
                            subject_id=referral.subject_id,
                            record_ids={"referral_id": referral.id},
                            request_id=None,
                            from_status=source,
                            to_status=target,
                            agencies=sorted(extra.get("agencies", [])),
                            outcome=extra.get("outcome"),
                        )
                    )
                if final not in ("submitted", "withdrawn") and rng.random() < 0.45:
                    authors = [referrer, coordinator] + [principals[CASEWORKERS[a]] for a in referral.assigned_agencies]
                    for n in range(rng.randint(1, 3)):
                        author = rng.choice(authors)
                        classification = rng.choice(NOTE_CLASSES[author.sector])
                        note = notes.add(
                            session,
                            state.envelope,
                            author,
                            referral,
                            NoteIn(classification=classification, text=prose(rng, 1, 4)),
                            at + timedelta(hours=6 * len(steps) + n + 1),
                        )
                        events.append(
                            change_event(
                                author,
                                EventType.create,
                                subject_id=referral.subject_id,
                                record_ids={"referral_id": referral.id, "note_id": note.id},
                                request_id=None,
                                classification=note.classification,
                            )
                        )
                        note_count += 1
                ids.append(referral.id)
                by_status[referral.status] = by_status.get(referral.status, 0) + 1
            state.audit.append_many(session, events)
        if (first // batch) % 20 == 19:
            log(f"seeded {first + batch} referrals")
    with transaction(state.sessions) as session:
        subjects = int(session.scalar(select(func.count()).select_from(Subject)) or 0)
        entries = int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
    # What autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) would have done by now.
    with state.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    state.engine.dispose()
    return Seeded(
        ids,
        count,
        note_count,
        subjects,
        entries,
        dict(sorted(by_status.items())),
        round(time.perf_counter() - started, 1),
    )


def lifecycle(rng: random.Random, final: str, referrer_agency: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The transitions (target, actor, body extras) that take a new referral to `final`."""
    assignees = [a for a in CASEWORKERS if a != referrer_agency]
    agencies = sorted(rng.sample(assignees, 1 if rng.random() < 0.7 else 2))
    if "youth-ngo-bridges" not in agencies and rng.random() < 0.3:
        agencies = sorted([*agencies, "youth-ngo-bridges"])
    steps: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "submitted": [],
        "triaged": [("triaged", "coordinator", {})],
        "declined": [
            ("triaged", "coordinator", {}),
            ("declined", "coordinator", {"reason": "threshold for multi-agency support not met"}),
        ],
        "withdrawn": [("withdrawn", "referrer", {"reason": "family moved out of the city"})],
        "accepted": [("triaged", "coordinator", {}), ("accepted", "coordinator", {})],
        "assigned": [
            ("triaged", "coordinator", {}),
            ("accepted", "coordinator", {}),
            ("assigned", "coordinator", {"agencies": agencies}),
        ],
        "in_intervention": [
            ("triaged", "coordinator", {}),
            ("accepted", "coordinator", {}),
            ("assigned", "coordinator", {"agencies": agencies}),
            ("in_intervention", "assigned", {}),
        ],
        "closed": [
            ("triaged", "coordinator", {}),
            ("accepted", "coordinator", {}),
            ("assigned", "coordinator", {"agencies": agencies}),
            ("in_intervention", "assigned", {}),
            ("closed", "coordinator", {"outcome": rng.choice(OUTCOMES)}),
        ],
        "transferred": [
            ("triaged", "coordinator", {}),
            ("transferred", "coordinator", {"reason": "person moved", "to_network": "Saida LPN"}),
        ],
    }
    return steps[final]


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
    env.update(
        {
            "CASEBRIDGE_ENV": "dev",
            "CASEBRIDGE_DATA_DIR": str(data_dir),
            "CASEBRIDGE_DATABASE_URL": url,
            "CASEBRIDGE_SEED_DEMO": "true",
            "CASEBRIDGE_LOG_LEVEL": "WARNING",
            "CASEBRIDGE_BENCH_BARE_READS": "true",
        }
    )
    return env


# `casebridge serve`, except that the listening socket the supervisor binds for its workers says
# it is TCP. uvicorn leaves its proto at 0, so asyncio never sets TCP_NODELAY on accepted
# connections and, with --workers > 1, every keep-alive request after the first waits ~40 ms for
# the client's delayed ACK (Kludex/uvicorn#3149). --tcp-nodelay measures the service without it.
NODELAY_LAUNCHER = """
import socket, sys
import uvicorn.config

bind = uvicorn.config.Config.bind_socket

def bind_tcp(self):
    sock = bind(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        sock = socket.socket(fileno=sock.detach())  # family, type and proto read from the fd
        sock.set_inheritable(True)
    return sock

uvicorn.config.Config.bind_socket = bind_tcp
sys.argv[0] = "casebridge"
from app.cli import main
main()
"""


class Server:
    """`casebridge serve --workers N` in its own process group, stopped whatever happens."""

    def __init__(self, data_dir: Path, url: str, workers: int, *, tcp_nodelay: bool = False) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.env = server_env(data_dir, url)
        self.workers = workers
        self.tcp_nodelay = tcp_nodelay
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import httpx

        exe = Path(sys.executable).with_name("casebridge")
        launcher = [sys.executable, "-c", NODELAY_LAUNCHER] if self.tcp_nodelay else [str(exe)]
        command = [
            *launcher,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603
                command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        ready = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.tail()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    ready += 1
                    # Every worker up (the kernel spreads connections among them), then ready.
                    if ready >= 4 * self.workers and len(self.worker_pids()) == self.workers:
                        return
                    continue
            ready = 0
            time.sleep(0.2)
        raise RuntimeError(f"the server did not become ready:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def worker_pids(self) -> list[int]:
        return [pid for pid, role in process_tree(self.proc.pid).items() if role == "worker"] if self.proc else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def process_tree(root: int) -> dict[int, str]:
    """The server's processes by role: supervisor, worker, other (multiprocessing helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree: dict[int, str] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        tree[pid] = "other"
        todo.extend(children.get(pid, []))
    for pid in tree:
        cmdline = cmdline_of(pid)
        if pid == root:
            tree[pid] = "supervisor"
        elif "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            tree[pid] = "worker"
    if not any(role == "worker" for role in tree.values()):
        tree[root] = "worker"  # one worker: uvicorn serves in the main process
    return tree


def cmdline_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of the server's process tree; peaks per phase, in total and per worker."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root, self.interval = root, interval
        self.phase = "startup"
        self.peaks: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        tree = process_tree(self.root)
        sizes = {pid: rss_mb(pid) for pid in tree}
        total = sum(v for v in sizes.values() if v is not None)
        peak = self.peaks.setdefault(
            self.phase, {"total_mb": 0.0, "workers_mb": {}, "supervisor_mb": 0.0, "other_mb": 0.0}
        )
        peak["total_mb"] = round(max(peak["total_mb"], total), 1)
        for pid, role in tree.items():
            size = sizes[pid]
            if size is None:
                continue
            if role == "worker":
                peak["workers_mb"][str(pid)] = round(max(peak["workers_mb"].get(str(pid), 0.0), size), 1)
            else:
                key = f"{role}_mb"
                peak[key] = round(max(peak[key], size), 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            with suppress(Exception):
                self.sample()
            self._stop.wait(self.interval)

    def overall(self) -> dict[str, Any]:
        phases = [p for name, p in self.peaks.items() if name != "startup"]
        workers: dict[str, float] = {}
        for p in phases:
            for pid, size in p["workers_mb"].items():
                workers[pid] = max(workers.get(pid, 0.0), size)
        return {
            "peak_total_mb": max((p["total_mb"] for p in phases), default=0.0),
            "peak_per_worker_mb": workers,
            "peak_worker_mb": max(workers.values(), default=0.0),
            "supervisor_mb": max((p["supervisor_mb"] for p in phases), default=0.0),
            "idle_after_start": self.peaks.get("idle"),
        }


# -- load generation -------------------------------------------------------------------------


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


LUA = r"""
-- Written by bench/load.py: one connection per thread; each thread stops itself after the
-- deadline (or its quota) right after a response, so no request is ever left in flight.
local cfg = {
  method = %(method)s, paths = %(paths)s, tokens = %(tokens)s, bodies = %(bodies)s,
  sequential = %(sequential)s, idem = %(idem)s, case_header = %(case_header)s,
  deadline = %(deadline)d, quota = %(quota)d, marks = %(marks)s,
}
local base_headers = { %(headers)s }
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local function lines(path)
  local t = {}
  if path then for line in io.lines(path) do if #line > 0 then t[#t + 1] = line end end end
  return t
end

local id, paths, tokens, bodies, pos
local calls, got, case, statuses = 0, 0, 0, {}

function init(args)
  id = wrk.thread:get("id")
  math.randomseed(id * 7919 + os.time())
  paths, tokens, bodies = lines(cfg.paths), lines(cfg.tokens), lines(cfg.bodies)
  pos = math.random(#paths)
end

function request()
  calls = calls + 1
  local path
  if cfg.sequential then
    pos = pos %% #paths + 1
    path = paths[pos]
  else
    path = paths[math.random(#paths)]
  end
  local headers = {}
  for k, v in pairs(base_headers) do headers[k] = v end
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] end
  if cfg.idem then headers["Idempotency-Key"] = cfg.idem .. "-" .. id .. "-" .. calls end
  local body = nil
  if #bodies > 0 then
    body = bodies[(calls + id * 997) %% #bodies + 1]
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(cfg.method, path, headers, body)
end

function response(status, headers, body)
  got = got + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  local h = cfg.case_header
  if h and status == 200 and (headers[h] or headers[string.lower(h)]) then
    case = case + 1
  end
  if got >= cfg.quota or os.time() >= cfg.deadline then
    -- wrk calls request() once on its first thread, before connecting, to check the script.
    wrk.thread:set("sent", calls - (id == 1 and 1 or 0))
    wrk.thread:set("got", got)
    wrk.thread:set("case", case)
    wrk.thread:set("statuses", statuses)
    local f = io.open(cfg.marks .. "/" .. id, "w")
    f:write(tostring(got))
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local per = {}
  for _, t in ipairs(threads) do
    local st = t:get("statuses") or {}
    local parts = {}
    for k, v in pairs(st) do parts[#parts + 1] = string.format("%%q:%%d", k, v) end
    per[#per + 1] = string.format('{"sent":%%d,"got":%%d,"case":%%d,"statuses":{%%s}}',
      t:get("sent") or -1, t:get("got") or -1, t:get("case") or 0, table.concat(parts, ","))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%%d,"requests":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"min":%%d,"mean":%%f,"max":%%d,"p50":%%d,"p90":%%d,' ..
    '"p95":%%d,"p99":%%d,"p999":%%d},"threads":[%%s]}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9),
    table.concat(per, ",")))
end
"""


def lua_str(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)


def write_lines(path: Path, items: list[str]) -> str | None:
    if not items:
        return None
    path.write_text("\n".join(items) + "\n")
    return str(path)


def run_wrk(load: Load, base: str, connections: int, seconds: float, max_requests: int, work: Path) -> Run:
    work.mkdir(parents=True, exist_ok=True)
    marks = work / "marks"
    shutil.rmtree(marks, ignore_errors=True)
    marks.mkdir()
    started = time.time()
    deadline = math.ceil(started + seconds)
    script = LUA % {
        "method": lua_str(load.method),
        "paths": lua_str(write_lines(work / "paths.txt", load.paths)),
        "tokens": lua_str(write_lines(work / "tokens.txt", load.tokens)),
        "bodies": lua_str(write_lines(work / "bodies.txt", load.bodies)),
        "sequential": "true" if load.sequential else "false",
        "idem": lua_str(f"{load.idempotency_prefix}-c{connections}" if load.idempotency_prefix else None),
        "case_header": lua_str(load.case_header),
        "deadline": deadline,
        "quota": max(1, math.ceil(max_requests / connections)),
        "marks": lua_str(str(marks)),
        "headers": ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in load.headers.items()),
    }
    (work / "load.lua").write_text(script)
    command = [
        "wrk",
        "-t",
        str(connections),
        "-c",
        str(connections),
        "-d",
        f"{int(seconds) + 120}s",
        "--timeout",
        "120s",
        "-s",
        str(work / "load.lua"),
        base,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    complete = True
    watchdog = deadline + 60
    while proc.poll() is None:
        if len(os.listdir(marks)) >= connections:
            break
        if time.time() > watchdog:
            complete = False
            break
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    ended = time.time()
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}\n{err}")
    result = json.loads(line.removeprefix("BENCH_JSON "))
    statuses: dict[str, int] = {}
    sent = got = case = 0
    for t in result["threads"]:
        if t["got"] < 0:
            complete = False
            continue
        sent, got, case = sent + t["sent"], got + t["got"], case + t["case"]
        for k, v in t["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    complete = complete and sent == got
    seconds_run = result["duration_us"] / 1e6
    lat = result["latency_us"]
    transport = {k: v for k, v in result["errors"].items() if k != "status"}
    return Run(
        scenario=load.name,
        connections=connections,
        driver="wrk",
        seconds=round(seconds_run, 3),
        requests=result["requests"],
        requests_per_s=round(result["requests"] / seconds_run, 1),
        latency_ms={k: round(lat[k] / 1000, 2) for k in ("p50", "p90", "p95", "p99", "p999", "max", "mean")},
        errors=bad_statuses(statuses) + sum(transport.values()),
        statuses=dict(sorted(statuses.items())),
        transport_errors=transport,
        case_responses=case,
        sent=sent,
        complete=complete,
        started_at=started,
        ended_at=ended,
    )


def bad_statuses(statuses: dict[str, int]) -> int:
    return sum(v for k, v in statuses.items() if not 200 <= int(k) < 400)


def run_httpx(load: Load, base: str, connections: int, seconds: float, max_requests: int, work: Path) -> Run:
    """The fallback driver, in its own process (this script with --drive)."""
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
        [sys.executable, __file__, "--drive", str(work / "spec.json")],
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
    import httpx

    spec = json.loads(Path(spec_path).read_text())
    load = Load(**spec["load"])
    connections, seconds, quota = spec["connections"], spec["seconds"], spec["max_requests"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    transport: dict[str, int] = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    counters = {"sent": 0, "case": 0}

    async def user(client: httpx.AsyncClient, uid: int, stop_at: float) -> None:
        rng = random.Random(uid)  # noqa: S311 - load pattern
        pos = rng.randrange(len(load.paths))
        n = 0
        while time.monotonic() < stop_at and counters["sent"] < quota:
            counters["sent"] += 1
            n += 1
            if load.sequential:
                pos = (pos + 1) % len(load.paths)
                path = load.paths[pos]
            else:
                path = rng.choice(load.paths)
            headers = dict(load.headers)
            if load.tokens:
                headers["Authorization"] = f"Bearer {rng.choice(load.tokens)}"
            if load.idempotency_prefix:
                headers["Idempotency-Key"] = f"{load.idempotency_prefix}-c{connections}-{uid}-{n}"
            body = None
            if load.bodies:
                body = load.bodies[(n + uid * 997) % len(load.bodies)].encode()
                headers["Content-Type"] = "application/json"
            began = time.perf_counter()
            try:
                response = await client.request(load.method, path, headers=headers, content=body)
            except httpx.TimeoutException:
                transport["timeout"] += 1
                continue
            except httpx.ConnectError:
                transport["connect"] += 1
                continue
            except httpx.HTTPError:
                transport["read"] += 1
                continue
            latencies.append(time.perf_counter() - began)
            key = str(response.status_code)
            statuses[key] = statuses.get(key, 0) + 1
            if load.case_header and response.status_code == 200 and load.case_header in response.headers:
                counters["case"] += 1

    async def main() -> float:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=spec["base"], limits=limits, timeout=30) as client:
            began = time.monotonic()
            stop_at = began + seconds
            await asyncio.gather(*(user(client, uid, stop_at) for uid in range(connections)))
            return time.monotonic() - began

    elapsed = asyncio.run(main())
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return round(latencies[min(len(latencies) - 1, math.ceil(p / 100 * len(latencies)) - 1)] * 1000, 2)

    done_count = len(latencies)
    result = {
        "scenario": load.name,
        "connections": connections,
        "driver": "httpx",
        "seconds": round(elapsed, 3),
        "requests": done_count,
        "requests_per_s": round(done_count / elapsed, 1),
        "latency_ms": {
            "p50": pct(50),
            "p90": pct(90),
            "p95": pct(95),
            "p99": pct(99),
            "p999": pct(99.9),
            "max": pct(100),
            "mean": round(sum(latencies) / max(1, done_count) * 1000, 2),
        },
        "errors": bad_statuses(statuses) + sum(transport.values()),
        "statuses": dict(sorted(statuses.items())),
        "transport_errors": transport,
        "case_responses": counters["case"],
        "sent": counters["sent"],
        "complete": counters["sent"] == done_count + sum(transport.values()),
    }
    sys.stdout.write(json.dumps(result) + "\n")


# -- scenarios -------------------------------------------------------------------------------


def token(base: str, credentials: dict[str, str], client_id: str) -> str:
    import httpx

    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": credentials[client_id],
    }
    response = httpx.post(f"{base}/v1/token", data=form, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def summary_pages(base: str, bearer: str, limit: int = 500) -> list[str]:
    """Walk the partner's full sync once; each page's URL is one request of the scenario."""
    import httpx

    headers = {"Authorization": f"Bearer {bearer}", "X-Purpose": "service_provision"}
    pages = ["/v1/summaries"]
    with httpx.Client(base_url=base, timeout=60) as client:
        while len(pages) < limit:
            response = client.get(pages[-1], headers=headers)
            response.raise_for_status()
            cursor = response.json()["next_cursor"]
            if not cursor:
                break
            pages.append("/v1/summaries?cursor=" + urllib.parse.quote(cursor, safe=""))
    return pages


def post_bodies(rng: random.Random, count: int = 400) -> list[str]:
    now = datetime.now(UTC)
    bodies = []
    for k in range(count):
        # Most posts are about new people; some about people already referred (linked).
        person = rng.randrange(8000) if rng.random() < 0.15 else 10_000_000 + rng.randrange(10**6) * 100 + k
        bodies.append(json.dumps(referral_document(rng, person, now), separators=(",", ":")))
    return bodies


def build_load(
    name: str,
    base: str,
    credentials: dict[str, str],
    ids: list[str],
    rng: random.Random,
    run_id: str,
) -> Load:
    reads = [f"/v1/referrals/{i}" for i in ids]
    if name == "hello":
        return Load(name, "GET", ["/healthz"])
    if name == "bare_read":
        return Load(
            name,
            "GET",
            reads,
            headers={"X-Bench-Bare": "1"},
            tokens=[token(base, credentials, READER)],
        )
    if name == "disclosure":
        return Load(
            name,
            "GET",
            reads,
            headers={"X-Purpose": "safeguarding_assessment"},
            tokens=[token(base, credentials, READER)],
            case_header="X-Granted-View",
        )
    if name == "summaries_sync":
        bearer = token(base, credentials, PARTNER)
        return Load(
            name,
            "GET",
            summary_pages(base, bearer),
            headers={"X-Purpose": "service_provision"},
            tokens=[bearer],
            sequential=True,
        )
    if name == "post_referral":
        return Load(
            name,
            "POST",
            ["/v1/referrals"],
            tokens=[token(base, credentials, c) for c, _ in REFERRERS],
            bodies=post_bodies(rng),
            idempotency_prefix=f"bench-{run_id}",
        )
    raise ValueError(name)


# -- the proof and the verdict ---------------------------------------------------------------


def disclosure_proof(url: str, runs: list[Run]) -> dict[str, Any]:
    """Every 200 that carried case data has exactly one log entry, under full concurrency."""
    from sqlalchemy import func, select

    from app.audit.models import AuditEntry
    from app.db import make_engine

    measured = [r for r in runs if r.scenario == "disclosure"]
    if not measured:
        return {"skipped": "the disclosure scenario did not run"}
    since, until = min(r.started_at for r in measured), max(r.ended_at for r in measured)
    engine = make_engine(url)
    window = (AuditEntry.time_us >= int(since * 1e6), AuditEntry.time_us <= int(until * 1e6))
    with engine.connect() as conn:
        entries = conn.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.event_type.in_(("disclosure", "access")),
                AuditEntry.recipient_agency == READER_AGENCY,
                *window,
            )
        )
        denials = conn.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.event_type == "denial",
                AuditEntry.recipient_agency == READER_AGENCY,
                *window,
            )
        )
    engine.dispose()
    responses = sum(r.case_responses for r in measured)
    return {
        "client": READER,
        "recipient_agency": READER_AGENCY,
        "window_utc": [
            datetime.fromtimestamp(since, UTC).isoformat(),
            datetime.fromtimestamp(until, UTC).isoformat(),
        ],
        "requests_sent": sum(r.sent for r in measured),
        "responses_200_with_case_data": responses,
        "log_entries_disclosure_or_access": int(entries or 0),
        "denials_logged": int(denials or 0),
        "difference": responses - int(entries or 0),
        "nothing_in_flight_at_stop": all(r.complete for r in measured),
    }


def audit_verify(data_dir: Path, url: str) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("casebridge")
    started = time.perf_counter()
    out = subprocess.run(  # noqa: S603
        [str(exe), "audit", "verify", "--json"],
        cwd=ROOT,
        env=server_env(data_dir, url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    report: Any = None
    for line in out.stdout.splitlines():
        with suppress(ValueError):
            report = json.loads(line)
    return {
        "exit_code": out.returncode,
        "report": report,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "stderr": out.stderr.strip()[-500:] or None,
    }


def machine(db: str, url: str, driver: str) -> dict[str, Any]:
    from sqlalchemy import text

    from app.db import make_engine

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")),
        "0",
    )
    engine = make_engine(url)  # the service's own engine: its pragmas are what the server ran with
    with engine.connect() as conn:
        if db == "sqlite":
            journal = conn.scalar(text("PRAGMA journal_mode"))
            synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                int(conn.scalar(text("PRAGMA synchronous")) or 0), "?"
            )
            version = f"SQLite {sqlite3.sqlite_version} (journal_mode={journal}, synchronous={synchronous})"
        else:
            version = str(conn.scalar(text("SELECT version()"))).split(" on ")[0]
            settings = ("synchronous_commit", "max_connections", "shared_buffers")
            version += " (" + ", ".join(f"{k}={conn.scalar(text(f'SHOW {k}'))}" for k in settings) + ")"
    engine.dispose()
    wrk_version = None
    if driver == "wrk":
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)  # noqa: S607
        wrk_version = (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr) else None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "db": version,
        "driver": wrk_version or "httpx (async, in a separate process)",
        "load_generator_shares_the_machine": True,
    }


def targets(runs: list[Run], rss: dict[str, Any], db: str) -> tuple[dict[str, Any], dict[str, Any]]:
    at = {(r.scenario, r.connections): r for r in runs}
    d, b, h = (at.get((s, RATIO_LEVEL)) for s in ("disclosure", "bare_read", "hello"))
    ratios = {
        f"disclosure_over_bare_read_at_{RATIO_LEVEL}": round(d.requests_per_s / b.requests_per_s, 3)
        if d and b
        else None,
        f"disclosure_over_hello_at_{RATIO_LEVEL}": round(d.requests_per_s / h.requests_per_s, 3) if d and h else None,
    }
    verdict = {
        "disclosure_over_bare_read": {
            "target": f">= {TARGETS['disclosure_over_bare_read_min']} ({db})",
            "value": ratios[f"disclosure_over_bare_read_at_{RATIO_LEVEL}"],
        },
        "disclosure_over_hello": {
            "target": f">= {TARGETS['disclosure_over_hello_min']}",
            "value": ratios[f"disclosure_over_hello_at_{RATIO_LEVEL}"],
        },
        "disclosure_p99_ms_at_32": {
            "target": f"<= {TARGETS['disclosure_p99_ms_max_at_32']}",
            "value": d.latency_ms["p99"] if d else None,
        },
        "rss_mb_per_worker": {
            "target": f"<= {TARGETS['rss_mb_per_worker_max']}",
            "value": rss["peak_worker_mb"],
        },
    }
    limits = {
        "disclosure_over_bare_read": (TARGETS["disclosure_over_bare_read_min"], 1),
        "disclosure_over_hello": (TARGETS["disclosure_over_hello_min"], 1),
        "disclosure_p99_ms_at_32": (TARGETS["disclosure_p99_ms_max_at_32"], -1),
        "rss_mb_per_worker": (TARGETS["rss_mb_per_worker_max"], -1),
    }
    for name, (limit, sign) in limits.items():
        value = verdict[name]["value"]
        verdict[name]["met"] = None if value is None else (value >= limit if sign > 0 else value <= limit)
    return ratios, verdict


# -- main ------------------------------------------------------------------------------------


@contextmanager
def data_directory(given: Path | None, keep: bool) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    path = Path(tempfile.mkdtemp(prefix="casebridge-load-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("CASEBRIDGE_BENCH_POSTGRES_URL"),
        help="A scratch PostgreSQL database: its public schema is dropped and rebuilt.",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--referrals", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=5.0, help="Seconds per scenario and concurrency.")
    parser.add_argument("--warmup", type=float, default=1.0, help="Unmeasured seconds before each scenario.")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="Upper bound on requests per scenario and concurrency.",
    )
    parser.add_argument("--concurrency", default=",".join(map(str, LEVELS)))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--driver", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--tcp-nodelay",
        action="store_true",
        help="Serve with TCP_NODELAY on accepted connections (works around "
        "Kludex/uvicorn#3149, which adds ~40 ms per keep-alive request when --workers > 1).",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--output", type=Path, help="Also write the JSON document here.")
    parser.add_argument("--keep", action="store_true", help="Keep the data directory (SQLite file, keyring).")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="Use (and keep) this data directory; a database seeded there by an earlier "
        "run is reused as it is (for profiling; figures come from fresh runs).",
    )
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.drive)
        return 0
    for name in [k for k in os.environ if k.startswith("CASEBRIDGE_") and k != "CASEBRIDGE_BENCH_POSTGRES_URL"]:
        del os.environ[name]  # the run is described by its flags alone
    driver = ("wrk" if shutil.which("wrk") else "httpx") if args.driver == "auto" else args.driver
    levels = [int(c) for c in args.concurrency.split(",") if c]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.db == "postgres" and not args.pg_url:
        parser.error("--db postgres needs --pg-url (a scratch database; its schema is dropped)")
    rng = random.Random(args.seed)  # noqa: S311 - benchmark data
    run_id = f"{int(time.time())}"
    with data_directory(args.data_dir, args.keep) as data_dir:
        url = args.pg_url if args.db == "postgres" else f"sqlite:///{data_dir / 'casebridge.db'}"
        marker = data_dir / "seeded.json"
        reused = marker.exists()
        if reused:
            seeded = Seeded(**json.loads(marker.read_text()))
            log(f"reusing the database seeded in {data_dir} ({seeded.referrals} referrals)")
        else:
            from app.config import load_settings

            if args.db == "postgres":
                reset_postgres(url)
            settings = load_settings(
                env="dev",
                data_dir=data_dir,
                database_url=url,
                seed_demo=True,
                auto_migrate=True,
                log_level="WARNING",
            )
            log(f"seeding {args.referrals} referrals into {args.db} ({data_dir})")
            seeded = seed(settings, args.referrals, rng)
            marker.write_text(json.dumps(asdict(seeded)))
            log(
                f"seeded in {seeded.seconds} s: {seeded.by_status}, {seeded.notes} notes, "
                f"{seeded.log_entries} log entries"
            )
        credentials = {
            c["client_id"]: c["client_secret"] for c in json.loads((data_dir / "demo-clients.json").read_text())
        }
        server = Server(data_dir, url, args.workers, tcp_nodelay=args.tcp_nodelay)
        runs: list[Run] = []
        sampler: RssSampler | None = None
        try:
            server.start()
            assert server.proc is not None
            log(f"server up on {server.base} with {args.workers} workers ({driver} drives the load)")
            sampler = RssSampler(server.proc.pid)
            sampler.start()
            sampler.phase = "idle"
            time.sleep(1.0)
            runner = run_wrk if driver == "wrk" else run_httpx
            for name in scenarios:
                load = build_load(name, server.base, credentials, seeded.referral_ids, rng, run_id)
                work = data_dir / "load" / name
                if args.warmup > 0:
                    sampler.phase = f"{name}/warmup"
                    runner(load, server.base, 8, args.warmup, args.max_requests, work / "warmup")
                for connections in levels:
                    sampler.phase = f"{name}/{connections}"
                    result = runner(
                        load,
                        server.base,
                        connections,
                        args.duration,
                        args.max_requests,
                        work / f"c{connections}",
                    )
                    runs.append(result)
                    log(
                        f"{name:15} c={connections:<3} {result.requests_per_s:9.1f} req/s  "
                        f"p50 {result.latency_ms['p50']:8.2f} ms  "
                        f"p99 {result.latency_ms['p99']:8.2f} ms  "
                        f"errors {result.errors}"
                    )
            sampler.phase = "end"
            sampler.sample()
        finally:
            if sampler is not None:
                sampler.stop()
            server.stop()
            log("server stopped")
        rss = sampler.overall() if sampler else {}
        for run in runs:
            run.server_rss = (sampler.peaks if sampler else {}).get(f"{run.scenario}/{run.connections}", {})
        proof = disclosure_proof(url, runs)
        log("verifying the disclosure log")
        verdict_of_log = audit_verify(data_dir, url)
        ratios, verdict = targets(runs, rss, args.db)
        document = {
            "benchmark": "bench/load.py",
            "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(args.db, url, driver),
            "setup": {
                "db": args.db,
                "workers": args.workers,
                "duration_s": args.duration,
                "server": "casebridge serve" + (" (TCP_NODELAY, see --tcp-nodelay)" if args.tcp_nodelay else ""),
                "warmup_s": args.warmup,
                "concurrency": levels,
                "max_requests": args.max_requests,
                "seeded": {k: v for k, v in asdict(seeded).items() if k != "referral_ids"},
                "reused_seeded_database": reused,
            },
            "scenarios": {
                name: {str(r.connections): scenario_row(r) for r in runs if r.scenario == name} for name in scenarios
            },
            "ratios": ratios,
            "server_rss": rss,
            "concurrency_proof": proof,
            "audit_verify": verdict_of_log,
            "targets": verdict,
        }
        text_out = json.dumps(document, indent=2)
        sys.stdout.write(text_out + "\n")
        if args.output:
            args.output.write_text(text_out + "\n")
        ok = proof.get("difference") == 0 and verdict_of_log["exit_code"] == 0
        return 0 if ok else 1


def scenario_row(run: Run) -> dict[str, Any]:
    peak = run.server_rss
    return {
        "requests_per_s": run.requests_per_s,
        "latency_ms": {k: run.latency_ms[k] for k in ("p50", "p95", "p99", "max")},
        "errors": run.errors,
        "requests": run.requests,
        "seconds": run.seconds,
        "statuses": run.statuses,
        "transport_errors": run.transport_errors,
        "sent": run.sent,
        "complete": run.complete,
        "server_rss_mb": {"total": peak.get("total_mb"), "per_worker": peak.get("workers_mb")},
    }


if __name__ == "__main__":
    sys.exit(main())
