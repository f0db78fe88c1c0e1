"""Backups that do not resurrect: erasures recorded after a backup are applied again at start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, NAME, PURPOSE, REFERRER, referral_body
from support.retention import (
    START,
    another_person,
    database_bytes,
    entries,
    is_sqlite,
    rows,
    verify_log,
)
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.main import create_app
from app.retention.backup import BackupError, check_backup, restore_sqlite, sqlite_path
from app.retention.ledger import ErasureLedger, LedgerEntry
from app.retention.models import Tombstone
from app.retention.reapply import reapply
from app.state import AppState
from app.subjects.models import Subject

runner = CliRunner()
GROUND = {"legal_ground": "objection", "reference": "DSR-2026-0077"}


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    """The CLI sees the same database, data directory and keyring as the service under test."""
    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(settings.resolved_keyring_path))
    return settings


class Service:
    """One run of the service: started, used, stopped (so the database can be restored under it)."""

    def __init__(self, settings: Settings) -> None:
        self.client = TestClient(create_app(settings), raise_server_exceptions=False)

    def __enter__(self) -> Service:
        self.client.__enter__()
        self.state: AppState = self.client.app.state.cb  # type: ignore[attr-defined]
        self.tokens: dict[str, str] = {}
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)

    def auth(self, client_id: str, **extra: str) -> dict[str, str]:
        if client_id not in self.tokens:
            secrets = json.loads((self.state.settings.data_dir / "demo-clients.json").read_text())
            secret = next(c["client_secret"] for c in secrets if c["client_id"] == client_id)
            response = self.client.post(
                "/v1/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                },
            )
            self.tokens[client_id] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[client_id]}", **extra}

    def seed(self) -> None:
        from app.db import transaction
        from app.demo import seed_demo, write_credentials

        with transaction(self.state.sessions) as session:
            credentials = seed_demo(session, self.state)
        write_credentials(credentials, self.state.settings)


def test_a_restored_backup_does_not_bring_an_erased_person_back(
    settings: Settings, cli_env: Settings, tmp_path: Path
) -> None:
    if not is_sqlite(settings):
        pytest.skip("the SQLite backup API; PostgreSQL backups are pg_dump's (see the next test)")
    backup = tmp_path / "backups" / "casebridge.db"
    with Service(settings) as service:
        service.seed()
        created = service.client.post(
            "/v1/referrals", json=referral_body(), headers=service.auth(REFERRER)
        ).json()
        referral_id, subject_id = created["id"], created["subject"]["id"]
        sealed = rows(service.state, Subject, id=subject_id)[0]
        ciphertexts = [sealed.wrapped_key, sealed.identity]

        code = runner.invoke(cli, ["backup", str(backup)])
        assert code.exit_code == 0, code.stderr
        assert oct(backup.stat().st_mode & 0o777) == "0o600"
        check_backup(backup)

        erased = service.client.post(
            f"/v1/subjects/{subject_id}/erasure", json=GROUND, headers=service.auth(COORDINATOR)
        )
        assert erased.status_code == 200, erased.text

    database = sqlite_path(settings.resolved_database_url)
    assert database is not None
    restore_sqlite(backup, database)
    assert all(
        c in database_bytes(settings) for c in ciphertexts if c
    )  # the backup held the person

    with Service(settings) as service:  # start: the ledger is re-applied before any request
        assert rows(service.state, Subject, id=subject_id) == []
        raw = database_bytes(settings)
        assert NAME.encode() not in raw
        for ciphertext in ciphertexts:
            assert ciphertext is not None and ciphertext not in raw
        response = service.client.get(
            f"/v1/referrals/{referral_id}", headers=service.auth(COORDINATOR, **PURPOSE)
        )
        assert response.status_code == 410, response.text
        [again] = [
            e
            for e in entries(service.state, event_type="erasure", subject_id=subject_id)
            if e.details and e.details.get("reapplied")
        ]
        assert again.details is not None and again.details["record_ids"]["referral_ids"] == [
            referral_id
        ]
        verify_log(service.state)


def test_the_restore_command_reapplies_at_once(
    settings: Settings, cli_env: Settings, tmp_path: Path
) -> None:
    if not is_sqlite(settings):
        pytest.skip("SQLite restore")
    backup = tmp_path / "b.db"
    with Service(settings) as service:
        service.seed()
        created = service.client.post(
            "/v1/referrals", json=referral_body(), headers=service.auth(REFERRER)
        ).json()
        assert runner.invoke(cli, ["backup", str(backup)]).exit_code == 0
        assert runner.invoke(cli, ["backup", str(backup)]).exit_code == 1  # never overwritten
        assert (
            service.client.post(
                f"/v1/subjects/{created['subject']['id']}/erasure",
                json=GROUND,
                headers=service.auth(COORDINATOR),
            ).status_code
            == 200
        )
    result = runner.invoke(cli, ["restore", str(backup), "--yes", "--json"])  # destructive: --yes
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["subjects"] == 1 and report["referrals"] == 1
    assert NAME.encode() not in database_bytes(settings)
    bad = tmp_path / "not-a-db"
    bad.write_text("hello")
    assert runner.invoke(cli, ["restore", str(bad)]).exit_code == 1
    with pytest.raises(BackupError):
        check_backup(bad)


def test_postgres_backups_are_pg_dump_and_say_how(
    settings: Settings, cli_env: Settings, tmp_path: Path
) -> None:
    if is_sqlite(settings):
        pytest.skip("PostgreSQL instructions")
    result = runner.invoke(cli, ["backup", str(tmp_path / "dump")])
    assert "pg_dump --format=custom" in result.stdout
    assert result.exit_code == 0  # pg_dump is installed where these tests run
    result = runner.invoke(cli, ["restore", str(tmp_path / "dump")])
    assert "pg_restore --clean" in result.stdout and "retention reapply" in result.stdout


def test_ledger_lines_the_database_has_not_seen_are_applied_again(
    app_client: TestClient,
    state: AppState,
    settings: Settings,
    auth: Any,
    post_referral: Any,
) -> None:
    """A restored database, on any backend: the ledger names a person it still holds."""
    created = post_referral()
    kept = post_referral(subject=another_person(1))
    subject_id = created["subject"]["id"]
    ledger = ErasureLedger(settings.resolved_erasure_ledger_path)
    ledger.append(
        [
            LedgerEntry("referral", created["id"], "erasure", START, subject_id),
            LedgerEntry("subject", subject_id, "erasure", START),
        ]
    )
    size = ledger.size()

    report = reapply(state)
    assert (report.subjects, report.referrals, report.entries) == (1, 1, 2)
    assert ledger.size() == size  # re-applying writes nothing new to the ledger
    assert (
        app_client.get(
            f"/v1/referrals/{created['id']}", headers=auth(COORDINATOR, **PURPOSE)
        ).status_code
        == 410
    )
    assert (
        app_client.get(
            f"/v1/referrals/{kept['id']}", headers=auth(COORDINATOR, **PURPOSE)
        ).status_code
        == 200
    )
    assert reapply(state).entries == 0  # the database now remembers how far it has been brought

    ledger.append([LedgerEntry("referral", "ref_long_gone", "purge", START, "sub_long_gone")])
    again = reapply(state)
    assert (again.entries, again.tombstones) == (1, 1)
    assert (
        app_client.get(
            "/v1/referrals/ref_long_gone", headers=auth(COORDINATOR, **PURPOSE)
        ).status_code
        == 410
    )
    verify_log(state)


def test_a_replaced_ledger_is_read_again_from_the_start(
    app_client: TestClient,
    state: AppState,
    settings: Settings,
    post_referral: Any,
) -> None:
    created = post_referral()
    ledger = ErasureLedger(settings.resolved_erasure_ledger_path)
    ledger.append([LedgerEntry("referral", "ref_a", "purge", START, "sub_a")])
    assert reapply(state).entries == 1
    settings.resolved_erasure_ledger_path.write_text(
        LedgerEntry("subject", created["subject"]["id"], "erasure", START).to_json() + "\n"
    )
    report = reapply(state)
    assert report.from_offset == 0 and report.subjects == 1


def test_the_service_starts_again_and_again_without_a_ledger(settings: Settings) -> None:
    for _ in range(2):
        with Service(settings) as service:
            assert service.client.get("/readyz").status_code == 200
    assert not settings.resolved_erasure_ledger_path.exists()
    ledger = ErasureLedger(settings.resolved_erasure_ledger_path)
    ledger.append([LedgerEntry("referral", "ref_x", "purge", START, "sub_x")])
    for _ in range(2):
        with Service(settings) as service:
            assert rows(service.state, Tombstone)[0].record_id == "ref_x"
