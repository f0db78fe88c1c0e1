"""Settings: sensible dev defaults, and a production start that refuses to guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings
from app.crypto.keyring import Keyring


def test_dev_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CASEBRIDGE_ENV", "CASEBRIDGE_DATABASE_URL", "CASEBRIDGE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.is_dev
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.resolved_database_url.endswith("var/casebridge.db")
    assert settings.resolved_keyring_path == Path("var/keyring.json")
    assert settings.should_migrate and settings.should_seed_demo


def test_environment_prefix_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", "postgresql://db.internal/cb")
    settings = load_settings()
    assert settings.data_dir == tmp_path
    assert settings.resolved_database_url == "postgresql://db.internal/cb"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "CASEBRIDGE_DATABASE_URL must be set"),
        ({"CASEBRIDGE_DATABASE_URL": "postgresql://u:changeme@db/cb"}, "placeholder"),
        ({"CASEBRIDGE_DATABASE_URL": "postgresql://db/cb"}, "CASEBRIDGE_KEYRING_PATH"),
        ({"CASEBRIDGE_DATABASE_URL": "postgresql://db/cb", "CASEBRIDGE_KEYRING_JSON": "changeme"},
         "CASEBRIDGE_KEYRING_JSON is a placeholder"),
        ({"CASEBRIDGE_DATABASE_URL": "postgresql://db/cb", "CASEBRIDGE_KEYRING_PATH": "/k",
          "CASEBRIDGE_SEED_DEMO": "true"}, "SEED_DEMO"),
    ],
)
def test_prod_refuses_to_start_without_explicit_config(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    monkeypatch.setenv("CASEBRIDGE_ENV", "prod")
    for name in ("CASEBRIDGE_DATABASE_URL", "CASEBRIDGE_KEYRING_PATH", "CASEBRIDGE_KEYRING_JSON"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=needle):
        load_settings()


def test_prod_with_everything_explicit_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEBRIDGE_ENV", "prod")
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", "postgresql://db/cb")
    monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", "/run/secrets/keyring.json")
    settings = load_settings()
    assert not settings.is_dev and not settings.should_migrate and not settings.should_seed_demo


def test_prod_start_with_a_missing_keyring_file_fails_clearly(tmp_path: Path) -> None:
    from app.bootstrap import build_state
    from app.crypto.keyring import KeyringError

    settings = Settings(
        env="prod", database_url=f"sqlite:///{tmp_path}/x.db",  # type: ignore[arg-type]
        keyring_path=tmp_path / "absent.json",
    )
    with pytest.raises(KeyringError, match="keyring not found"):
        build_state(settings)


def test_prod_refuses_a_world_readable_keyring(tmp_path: Path) -> None:
    from app.bootstrap import build_state
    from app.crypto.keyring import KeyringError

    path = tmp_path / "keyring.json"
    Keyring.generate().save(path)
    path.chmod(0o644)
    settings = Settings(
        env="prod", database_url=f"sqlite:///{tmp_path}/x.db",  # type: ignore[arg-type]
        keyring_path=path,
    )
    with pytest.raises(KeyringError, match="chmod 600"):
        build_state(settings)
