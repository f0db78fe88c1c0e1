"""Erasure fixtures: settings without background jobs, so tests drive the purge and the clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.retention import retention_settings

from app.config import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return retention_settings(tmp_path, database_url)
