"""Seeding: the demo network, then referrals through the service layer, each change logged."""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.agencies.schemas import Sector
from app.audit.events import AuditEvent, EventType
from app.audit.models import AuditEntry
from app.auth.principal import Principal
from app.bootstrap import build_state, seed_demo_if_empty
from app.config import Settings, load_settings
from app.db import make_engine, transaction
from app.demo import DEMO_AGENCIES, DEMO_CLIENTS
from app.disclose import change_event, paths_of
from app.notes import service as notes
from app.notes.schemas import NoteIn
from app.referrals import service as referrals
from app.referrals.models import Referral
from app.referrals.schemas import TransitionIn
from app.retention.dates import RetentionRules
from app.state import AppState
from app.subjects.models import Subject

from . import log
from .data import (
    CASEWORKERS,
    FINAL_STATUS,
    NOTE_CLASSES,
    READER,
    REFERRERS,
    lifecycle,
    prose,
    referral_document,
    weighted,
)

BATCH = 100  # referrals per transaction (and per log append)
Step = tuple[str, str, dict[str, Any]]


@dataclass
class Seeded:
    referral_ids: list[str]
    referrals: int
    notes: int
    subjects: int
    log_entries: int
    by_status: dict[str, int]
    seconds: float


def seeded_database(data_dir: Path, db: str, url: str, count: int, rng: random.Random) -> tuple[Seeded, bool]:
    """The database seeded in `data_dir` by an earlier run (and True), else a fresh one."""
    marker = data_dir / "seeded.json"
    if marker.exists():
        seeded = Seeded(**json.loads(marker.read_text()))
        log(f"reusing the database seeded in {data_dir} ({seeded.referrals} referrals)")
        return seeded, True
    if db == "postgres":
        reset_postgres(url)
    settings = seed_settings(data_dir, url)
    log(f"seeding {count} referrals into {db} ({data_dir})")
    seeded = seed(settings, count, rng)
    marker.write_text(json.dumps(asdict(seeded)))
    log(f"seeded in {seeded.seconds} s: {seeded.by_status}, {seeded.notes} notes, {seeded.log_entries} log entries")
    return seeded, False


def seed_settings(data_dir: Path, url: str) -> Settings:
    return load_settings(
        env="dev",
        data_dir=data_dir,
        database_url=url,
        seed_demo=True,
        auto_migrate=True,
        log_level="WARNING",
    )


def reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def seed(settings: Settings, count: int, rng: random.Random) -> Seeded:
    """Demo network, then `count` referrals through the service layer, each change logged."""
    started = time.perf_counter()
    state = build_state(settings)
    seed_demo_if_empty(state)
    seeder = Seeder(state, rng, demo_principals())
    end = datetime.now(UTC) - timedelta(hours=2)
    start = end - timedelta(days=180)
    for first in range(0, count, BATCH):
        seeder.batch([start + (end - start) * (i / count) for i in range(first, min(first + BATCH, count))])
        if (first // BATCH) % 20 == 19:
            log(f"seeded {first + BATCH} referrals")
    subjects, entries = row_counts(state)
    analyze(state)
    return Seeded(
        seeder.ids,
        count,
        seeder.notes,
        subjects,
        entries,
        dict(sorted(seeder.by_status.items())),
        round(time.perf_counter() - started, 1),
    )


def demo_principals() -> dict[str, Principal]:
    """Every demo client as the principal its token would carry."""
    sectors: dict[str, Sector] = {a: s for a, _, s in DEMO_AGENCIES}
    return {
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


def row_counts(state: AppState) -> tuple[int, int]:
    """Subjects and log entries in the seeded database."""
    with transaction(state.sessions) as session:
        subjects = int(session.scalar(select(func.count()).select_from(Subject)) or 0)
        entries = int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
    return subjects, entries


def analyze(state: AppState) -> None:
    # What autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) would have done by now.
    with state.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    state.engine.dispose()


@dataclass
class Seeder:
    """Creates referrals, moves them along and writes their notes, as the routers would."""

    state: AppState
    rng: random.Random
    principals: dict[str, Principal]
    ids: list[str] = field(default_factory=list)
    by_status: dict[str, int] = field(default_factory=dict)
    notes: int = 0
    persons: int = 0

    def __post_init__(self) -> None:
        self.coordinator = self.principals[READER]
        self.crypto = referrals.Crypto(self.state.envelope, self.state.blind_index)
        self.rules = RetentionRules.of(self.state.policies.current, self.state.settings.max_open_retention)

    def batch(self, times: list[datetime]) -> None:
        """One transaction: a referral per time given, and all their log entries."""
        events: list[AuditEvent] = []
        with transaction(self.state.sessions) as session:
            for at in times:
                events += self.referral(session, at)
            self.state.audit.append_many(session, events)

    def referral(self, session: Session, at: datetime) -> list[AuditEvent]:
        rng = self.rng
        person = self.next_person()
        referrer = self.principals[weighted(rng, REFERRERS)]
        body = referral_document(rng, person, at)
        referral = referrals.create(session, self.crypto, referrer, body, at, policies=self.state.policies.current,
                                    retention=self.rules)
        events = [
            change_event(
                referrer,
                EventType.create,
                subject_id=referral.subject_id,
                record_ids={"referral_id": referral.id},
                request_id=None,
                fields=sorted(paths_of(body)),
            )
        ]
        final = weighted(rng, FINAL_STATUS)
        steps = lifecycle(rng, final, referrer.agency_id)
        referral = self.walk(session, referral, referrer, steps, at, events)
        # A transferred referral belongs to the town's network now: the city's agencies add no notes.
        if final not in ("submitted", "withdrawn", "transferred") and rng.random() < 0.45:
            events += self.write_notes(session, referral, referrer, at, 6 * len(steps))
        self.ids.append(referral.id)
        self.by_status[referral.status] = self.by_status.get(referral.status, 0) + 1
        return events

    def next_person(self) -> int:
        # One in eight referrals is about someone referred before (linked by identifier).
        if self.persons and self.rng.random() < 0.12:
            return self.rng.randrange(self.persons)
        self.persons += 1
        return self.persons - 1

    def walk(
        self,
        session: Session,
        referral: Referral,
        referrer: Principal,
        steps: list[Step],
        at: datetime,
        events: list[AuditEvent],
    ) -> Referral:
        """Take the referral through `steps`, six hours apart, logging each transition."""
        for k, (target, actor, extra) in enumerate(steps):
            who = self.actor(actor, referrer, referral)
            source = referral.status
            referral, _ = referrals.transition(
                session,
                self.state.policies.current,
                who,
                referral.id,
                TransitionIn(to=target, **extra),
                None,
                at + timedelta(hours=6 * (k + 1)),
                crypto=self.crypto,
                retention=self.rules,
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
        return referral

    def actor(self, role: str, referrer: Principal, referral: Referral) -> Principal:
        if role == "coordinator":
            return self.coordinator
        if role == "referrer":
            return referrer
        return self.principals[CASEWORKERS[referral.assigned_agencies[0]]]

    def write_notes(
        self, session: Session, referral: Referral, referrer: Principal, at: datetime, after_hours: int
    ) -> list[AuditEvent]:
        """One to three notes by people involved, an hour apart after the last transition."""
        rng = self.rng
        authors = [referrer, self.coordinator] + [self.principals[CASEWORKERS[a]] for a in referral.assigned_agencies]
        events = []
        for n in range(rng.randint(1, 3)):
            author = rng.choice(authors)
            classification = rng.choice(NOTE_CLASSES[author.sector])
            note = notes.add(
                session,
                self.state.envelope,
                author,
                referral,
                NoteIn(classification=classification, text=prose(rng, 1, 4)),
                at + timedelta(hours=after_hours + n + 1),
                policies=self.state.policies.current,
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
            self.notes += 1
        return events
