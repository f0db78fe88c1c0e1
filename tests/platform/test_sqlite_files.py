"""SQLite done right: private database files, and a writer turn that waits a bounded time, then 503."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from support.referrals import COORDINATOR, PURPOSE, REFERRER, referral_body

from app.audit.models import AuditEntry
from app.config import Settings
from app.main import create_app
from app.state import AppState

WAIT = 1.0  # CASEBRIDGE_SQLITE_WRITER_WAIT_SECONDS in these tests
Auth = Callable[..., dict[str, str]]


@pytest.fixture
def settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    """SQLite only (the writer turn is SQLite's), with a short writer wait."""
    path = tmp_path / "casebridge.db"
    shutil.copy(sqlite_template, path)
    return Settings(
        env="dev",  # type: ignore[arg-type]
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{path}",
        keyring_path=tmp_path / "data" / "keyring.json",
        auto_migrate=False,
        seed_demo=False,
        sqlite_writer_wait_seconds=WAIT,
    )


@contextmanager
def writer_turn_held_by_another_process(database: str) -> Iterator[None]:
    """Another process takes the flock every CaseBridge writer on this file queues on, and keeps it."""
    holder = subprocess.Popen(  # noqa: S603 - this interpreter, our own snippet
        [sys.executable, "-c", (
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n"
        ), f"{database}-writers.lock"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder exits, and with it goes its lock
        holder.wait(timeout=10)


def disclosures(state: AppState) -> int:
    with state.read_sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)
                                  .where(AuditEntry.event_type == "disclosure")) or 0)


def referral_count(app_client: TestClient, auth: Auth) -> int:
    response = app_client.get("/v1/referrals", params={"limit": 100}, headers=auth(COORDINATOR, **PURPOSE))
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def assert_busy(response: Any, started: float) -> None:
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert WAIT * 0.9 <= elapsed < WAIT + 3, elapsed  # waited its turn, then gave up within the bound


def test_a_held_writer_turn_makes_reads_and_writes_answer_503_then_they_work(
    app_client: TestClient, auth: Auth, state: AppState, settings: Settings, post_referral: Callable[..., Any]
) -> None:
    rid = post_referral()["id"]
    read_headers, write_headers = auth(COORDINATOR, **PURPOSE), auth(REFERRER)
    assert app_client.get(f"/v1/referrals/{rid}", headers=read_headers).status_code == 200
    referrals, logged = referral_count(app_client, auth), disclosures(state)
    assert settings.database_url is not None
    with writer_turn_held_by_another_process(settings.database_url.removeprefix("sqlite:///")):
        started = time.monotonic()
        # A read writes its disclosure-log entry before it discloses: no turn, no entry, no data.
        read = app_client.get(f"/v1/referrals/{rid}", headers=read_headers)
        assert_busy(read, started)
        assert "narrative" not in read.text
        started = time.monotonic()
        assert_busy(app_client.post("/v1/referrals", json=referral_body(), headers=write_headers), started)
    assert disclosures(state) == logged
    assert referral_count(app_client, auth) == referrals  # nothing half-written
    assert app_client.get(f"/v1/referrals/{rid}", headers=read_headers).status_code == 200
    assert app_client.post("/v1/referrals", json=referral_body(), headers=write_headers).status_code == 201
    assert disclosures(state) > logged


def test_database_files_are_created_private(tmp_path: Path) -> None:
    """casebridge.db, -wal and -shm are 0600 and the data dir 0700, whatever the umask lets through."""
    data = tmp_path / "new" / "data"
    settings = Settings(env="dev", data_dir=data, auto_migrate=True, seed_demo=False)  # type: ignore[arg-type]
    previous = os.umask(0o022)
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").status_code == 200
            names = ["casebridge.db", "casebridge.db-wal", "casebridge.db-shm", "casebridge.db-writers.lock",
                     "casebridge.db-migrate.lock", "keyring.json"]
            modes = {name: stat.S_IMODE((data / name).stat().st_mode) for name in names}
            assert modes == dict.fromkeys(names, 0o600)
            assert stat.S_IMODE(data.stat().st_mode) == 0o700
    finally:
        os.umask(previous)
