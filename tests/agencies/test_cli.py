"""The casebridge command line: operators manage agencies, clients, keys and the demo network."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.crypto.keyring import Keyring
from app.crypto.secrets import SecretHasher
from app.db import make_engine, make_sessionmaker
from app.demo import DEMO_AGENCIES

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Path:
    data = tmp_path / "cli-data"
    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(data))
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", database_url)
    monkeypatch.delenv("CASEBRIDGE_KEYRING_PATH", raising=False)
    return data


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_agency_add_and_list(env: Path) -> None:
    code, _, _ = run("agency", "add", "zarqa-lpn", "--name", "Zarqa LPN", "--sector", "local_government")
    assert code == 0
    code, stdout, _ = run("agency", "list", "--json")
    assert code == 0
    expected = {"id": "zarqa-lpn", "name": "Zarqa LPN", "sector": "local_government"}
    assert expected.items() <= json.loads(stdout)[0].items()


def test_agency_add_rejects_bad_input_and_duplicates(env: Path) -> None:
    code, _, stderr = run("agency", "add", "valid-x", "--name", "n", "--sector", "astrology")
    assert code == 2 and "sector" in stderr  # an unknown choice is a usage error (docs/cli.md)
    assert run("agency", "add", "irbid-lpn", "--name", "Irbid", "--sector", "local_government")[0] == 0
    code, _, stderr = run("agency", "add", "irbid-lpn", "--name", "Irbid", "--sector", "local_government")
    assert code == 1 and "already exists" in stderr


def test_client_add_list_disable(env: Path, database_url: str) -> None:
    run("agency", "add", "saida-lpn", "--name", "Saida LPN", "--sector", "local_government")
    code, stdout, stderr = run("client", "add", "--agency", "saida-lpn", "--name", "Focal point",
                               "--roles", "coordinator,referrer", "--id", "saida-focal")
    assert code == 0, stderr
    created = json.loads(stdout)
    assert created["client_id"] == "saida-focal"
    assert created["roles"] == ["coordinator", "referrer"]
    assert "cannot be shown again" in stderr
    code, stdout, _ = run("client", "list", "--json")
    listed = json.loads(stdout)
    assert listed == [{"id": "saida-focal", "agency": "saida-lpn", "name": "Focal point",
                       "roles": ["coordinator", "referrer"], "disabled": False}]
    assert created["client_secret"] not in stdout
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        from app.agencies.models import ApiClient

        stored = session.get(ApiClient, "saida-focal")
        hasher = SecretHasher(Keyring.load(env / "keyring.json"))
        assert stored is not None and hasher.verify("saida-focal", created["client_secret"], stored.secret_hash)
    engine.dispose()
    assert run("client", "disable", "saida-focal")[0] == 0
    assert json.loads(run("client", "list", "--json")[1])[0]["disabled"] is True
    code, _, stderr = run("client", "disable", "nobody")
    assert code == 1 and "does not exist" in stderr


def test_client_add_rejects_unknown_roles_and_agencies(env: Path) -> None:
    code, _, stderr = run("client", "add", "--agency", "none-such", "--name", "n", "--roles", "referrer")
    assert code == 1 and "does not exist" in stderr
    code, _, stderr = run("client", "add", "--agency", "none-such", "--name", "n", "--roles", "god")
    assert code == 2 and "roles" in stderr  # an unknown choice is a usage error (docs/cli.md)


def test_demo_is_idempotent_and_prints_working_credentials(env: Path) -> None:
    code, first, _ = run("demo")
    assert code == 0
    creds = json.loads(first)
    assert {c["sector"] for c in creds} >= {"local_government", "education", "health", "police",
                                            "youth_work", "religious_community", "national_authority"}
    assert all(set(c) == {"client_id", "client_secret", "agency", "sector", "roles"} for c in creds)
    path = env / "demo-clients.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == creds
    code, second, _ = run("demo")
    assert code == 0
    assert json.loads(second) == creds
    agencies = json.loads(run("agency", "list", "--json")[1])
    assert len(agencies) == len(DEMO_AGENCIES)
    roles = {c["client_id"]: c["roles"] for c in creds}
    assert roles["municipality-coordinator"] == ["coordinator"]
    assert roles["independent-auditor"] == ["auditor"]
    assert roles["municipality-operator"] == ["admin"]


def test_keys_list_shows_no_material(env: Path) -> None:
    code, stdout, _ = run("keys", "list", "--json")
    assert code == 0
    keys = json.loads(stdout)
    assert {k["kind"] for k in keys} == {"token_signing", "kek", "audit", "blind_index", "checkpoint_signing"}
    keyring = json.loads((env / "keyring.json").read_text())
    for entry in keyring["keys"]:
        assert entry["material"] not in stdout


def test_keys_init_writes_a_private_keyring_and_never_overwrites(env: Path, tmp_path: Path) -> None:
    path = tmp_path / "prod-keyring.json"
    assert run("keys", "init", str(path))[0] == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    code, _, stderr = run("keys", "init", str(path))
    assert code == 1 and "refusing" in stderr


def test_db_upgrade_and_current(env: Path) -> None:
    code, stdout, _ = run("db", "upgrade")
    assert code == 0 and "database at" in stdout
    code, stdout, _ = run("db", "current")
    assert code == 0 and "(head)" in stdout


def test_prod_misconfiguration_is_a_clear_cli_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEBRIDGE_ENV", "prod")
    monkeypatch.delenv("CASEBRIDGE_DATABASE_URL")
    code, _, stderr = run("agency", "list")
    assert code == 1 and "refusing to start in prod" in stderr
