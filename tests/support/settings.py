"""The suite's settings: dev, a database the fixtures give, the data dir and keyring under tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.config import Settings


def suite_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Migrated by the fixtures (no auto-migrate), no demo unless asked; `overrides` on top."""
    given: dict[str, Any] = {"auto_migrate": False, "seed_demo": False, **overrides}
    return Settings(
        env="dev",  # type: ignore[arg-type]
        data_dir=tmp_path / "data",
        database_url=database_url,
        keyring_path=tmp_path / "data" / "keyring.json",
        **given,
    )
