"""Audit fixtures: a log without its background signer, direct database access for tampering."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.settings import suite_settings

from app.config import Settings
from app.state import AppState

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # audit_support, rfc9162_reference
    sys.path.insert(0, _HERE)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """As the suite's, but checkpoints are signed on demand so tests control them."""
    return suite_settings(tmp_path, database_url, checkpoint_interval_seconds=0)


@pytest.fixture
def service(settings: Settings) -> Iterator[AppState]:
    """The service's state without HTTP: the log, its keys and sessions."""
    from app.bootstrap import build_state

    state = build_state(settings)
    yield state
    state.engine.dispose()


def _empty_log(engine: Any) -> None:
    from sqlalchemy import inspect, text

    tables = [t for t in inspect(engine).get_table_names() if t.startswith("audit_")]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)}"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - table names from the test schema


@pytest.fixture
def app_client(settings: Settings) -> Iterator[object]:
    """The app, started, with its log emptied of the start-up entry (tests count from zero)."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        _empty_log(client.app.state.cb.engine)  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def demo(demo: dict[str, dict[str, Any]], state: AppState) -> dict[str, dict[str, Any]]:
    """The demo seeded, its agreements' signatures (logged) then emptied from the log too: tests count from zero."""
    _empty_log(state.engine)
    return demo
