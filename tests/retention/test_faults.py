"""A purge or rotation killed half-way serves nothing half-erased; the next run finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from support.referrals import COORDINATOR, PURPOSE
from support.retention import Clock, another_person, rows, verify_log

from app.config import Settings
from app.db import transaction
from app.referrals.models import Referral
from app.retention import purge, shred
from app.retention.models import Tombstone
from app.state import AppState
from app.subjects.models import Subject

REPO = Path(__file__).resolve().parents[2]
CASEBRIDGE = str(Path(sys.executable).parent / "casebridge")


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
    env.update(
        {
            "CASEBRIDGE_ENV": "dev",
            "CASEBRIDGE_DATA_DIR": str(settings.data_dir),
            "CASEBRIDGE_DATABASE_URL": settings.resolved_database_url,
            "CASEBRIDGE_KEYRING_PATH": str(settings.resolved_keyring_path),
            "CASEBRIDGE_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def run_until_paused(args: list[str], env: dict[str, str], step: str, timeout: float = 60) -> None:
    """Start the CLI, wait until it pauses at `step`, and kill it there with SIGKILL."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI, arguments from the test
        [CASEBRIDGE, *args],
        env={**env, "CASEBRIDGE_TEST_PAUSE_AT": step},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if f"paused at {step}" in line:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the CLI never reached {step}")
        else:
            pytest.fail(f"the CLI exited ({process.wait()}) before reaching {step}")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _expire(state: AppState, referral_id: str) -> None:
    """Make a referral old in real time, for a CLI whose clock cannot be moved."""
    with transaction(state.sessions) as session:
        session.execute(
            update(Referral)
            .where(Referral.id == referral_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=3), retain_until=None)
        )


def test_a_purge_killed_between_its_steps_is_finished_by_the_next_run(
    app_client: TestClient,
    state: AppState,
    settings: Settings,
    auth: Callable[..., Any],
    post_referral: Callable[..., Any],
) -> None:
    created = post_referral()
    referral_id, subject_id = created["id"], created["subject"]["id"]
    _expire(state, referral_id)

    run_until_paused(
        ["retention", "run", "--yes"], cli_env(settings, CASEBRIDGE_MAX_OPEN_RETENTION="P1D"), "purge.sealed"
    )

    # Killed after the key was destroyed and before the rows went: sealed off, not served.
    assert rows(state, Subject, id=subject_id)[0].wrapped_key is None
    assert rows(state, Referral, id=referral_id)
    assert {t.record_id for t in rows(state, Tombstone)} == {referral_id, subject_id}
    assert (
        app_client.get(
            f"/v1/referrals/{referral_id}", headers=auth(COORDINATOR, **PURPOSE)
        ).status_code
        == 410
    )
    assert (
        app_client.get("/v1/referrals", headers=auth(COORDINATOR, **PURPOSE)).json()["items"] == []
    )

    report = purge.run(state)  # the killed run's lease names a dead process: taken over at once
    assert report.finished == 1
    assert rows(state, Referral, id=referral_id) == []
    assert rows(state, Subject, id=subject_id) == []
    verify_log(state)


def test_a_purge_that_fails_half_way_is_finished_by_the_next_run(
    app_client: TestClient,
    state: AppState,
    auth: Callable[..., Any],
    post_referral: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(state)
    auth(COORDINATOR)
    first, second = post_referral(), post_referral(subject=another_person(1))
    clock.advance(days=3700)
    calls = {"n": 0}
    real = shred.remove

    def crash_on_second(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(shred, "remove", crash_on_second)
    with pytest.raises(RuntimeError):
        purge.run(state)
    monkeypatch.undo()
    left = rows(state, Referral)
    assert len(left) == 1  # the first went; the second is sealed off, its rows still there
    assert rows(state, Subject, id=left[0].subject_id)[0].wrapped_key is None
    report = purge.run(state)
    assert report.finished == 1
    assert rows(state, Referral) == [] and rows(state, Subject) == []
    assert {first["id"], second["id"]} <= {t.record_id for t in rows(state, Tombstone)}
    verify_log(state)


def test_a_rotation_killed_half_way_leaves_everything_readable_and_resume_finishes(
    app_client: TestClient,
    state: AppState,
    settings: Settings,
    auth: Callable[..., Any],
    post_referral: Callable[..., Any],
) -> None:
    from app.crypto.keyring import KeyKind
    from app.crypto.rotation import rotate

    ids = [post_referral(subject=another_person(i))["id"] for i in range(3)]
    old_kek = state.keyring.active(KeyKind.kek).id

    run_until_paused(
        ["keys", "rotate", "kek"],
        cli_env(settings, CASEBRIDGE_RETENTION_BATCH_SIZE="1"),
        "rotation.batch",
    )

    keks = {s.kek_id for s in rows(state, Subject)}
    assert old_kek in keks and len(keks) == 2  # one batch moved, the rest not
    for (
        referral_id
    ) in ids:  # this process re-reads the rotated keyring file when it meets the new key
        response = app_client.get(
            f"/v1/referrals/{referral_id}", headers=auth(COORDINATOR, **PURPOSE)
        )
        assert response.status_code == 200, response.text
    assert state.keyring.active(KeyKind.kek).id != old_kek

    report = rotate(state, KeyKind.kek, resume=True)
    assert report.remaining == 0 and report.failed == []
    assert {s.kek_id for s in rows(state, Subject)} == {report.key_id}
    verify_log(state)
