"""Helpers for retention, erasure and rotation tests: a clock to move, the log, the file's bytes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.audit import live, queries
from app.config import Settings
from app.db import transaction
from app.state import AppState

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    """The service's clock, moved by tests: `clock.at(date)` or `clock.advance(days=…)`."""

    def __init__(self, state: AppState, now: datetime = START) -> None:
        self.now = now
        state.clock = self

    def __call__(self) -> datetime:
        return self.now

    def at(self, when: datetime) -> datetime:
        self.now = when
        return when

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def retention_settings(tmp_path: Path, database_url: str, **changes: Any) -> Settings:
    """The suite's settings, with no background purge or checkpoints: tests drive both."""
    values: dict[str, Any] = dict(
        env="dev",
        data_dir=tmp_path / "data",
        database_url=database_url,
        keyring_path=tmp_path / "data" / "keyring.json",
        auto_migrate=False,
        seed_demo=False,
        checkpoint_interval_seconds=0,
        retention_interval_seconds=0,
        keyring_reload_seconds=0,
    )
    values.update(changes)
    return Settings(**values)


def entries(state: AppState, **filters: Any) -> list[queries.EntryView]:
    with transaction(state.sessions) as session:
        return queries.search(
            session.connection(),
            state.audit.sealer,
            queries.EntryFilter(**filters),
            after=None,
            limit=10_000,
        )


def verify_log(state: AppState) -> None:
    """The disclosure log still verifies (leaves, chain, tree, checkpoints) after what was done."""
    with transaction(state.sessions) as session:
        from app.audit.checkpoints import sign_if_grown

        sign_if_grown(session.connection(), state.audit.signer)
    report = live.verify_database(state.sessions, state.audit.signer)
    assert report.ok, report.problem


def rows(state: AppState, model: Any, **where: Any) -> list[Any]:
    with transaction(state.sessions) as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.scalars(query))


def database_bytes(settings: Settings) -> bytes:
    """Every byte SQLite keeps for the database: the file, its WAL and its shared memory."""
    url = settings.resolved_database_url
    path = Path(url.removeprefix("sqlite:///"))
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            out += candidate.read_bytes()
    return out


def is_sqlite(settings: Settings) -> bool:
    return settings.resolved_database_url.startswith("sqlite")


def client_ready(auth: Callable[..., dict[str, str]], *ids: str) -> None:
    """Fetch tokens before the clock moves (tokens are checked against the real time)."""
    for client_id in ids:
        auth(client_id)


def another_person(n: int) -> dict[str, Any]:
    """A subject body for a different person (own national id, name and narrative-free)."""
    return {
        "given_name": f"Person{n}",
        "family_name": f"Other-{n}",
        "date_of_birth": "2010-01-01",
        "district": "al-mina",
        "identifiers": [{"system": "national_id", "value": f"OTHER-{n}"}],
    }
