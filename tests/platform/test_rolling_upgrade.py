"""Rolling upgrades: the running release stays ready on a database migrated ahead by expand-only steps.

A newer release's migration is made for real in a copy of the migrations folder (the repository's
is left alone) and the database is upgraded to it; then this code starts on that database, as the
previous release does while the new one rolls out (docs/upgrades.md).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, text

from app import migrate
from app.config import Settings
from app.db import make_engine
from app.main import create_app

HEAD = next(iter(migrate.head_revisions()))
NEXT = "9001"
NEWER_MIGRATION = '''"""a newer release's migration: {kind}

Revision ID: {revision}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None
{marker}


def upgrade() -> None:
    op.add_column("agencies", sa.Column("rolling_probe_{revision}", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agencies") as batch:
        batch.drop_column("rolling_probe_{revision}")
'''

Release = Callable[..., Path]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def newer_release(tmp_path: Path, engine: Engine) -> Iterator[Release]:
    """Migrations of a newer release: this code's, plus the ones given; the database goes back after."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))

    def add(*steps: tuple[str, bool]) -> Path:
        down = HEAD
        for revision, compatible in steps:
            marker = "compatible_with_previous = True" if compatible else ""
            kind = "expand" if compatible else "contract"
            (folder / "versions" / f"29991231_{revision}_probe.py").write_text(
                NEWER_MIGRATION.format(kind=kind, revision=revision, down=down, marker=marker))
            down = revision
        return folder

    yield add
    if migrate.current_revisions(engine) != {HEAD}:
        migrate.downgrade(engine, HEAD, directory=folder)  # PostgreSQL's test database is shared
    assert migrate.current_revisions(engine) == {HEAD}


def serving(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_this_code_stays_ready_on_a_database_ahead_by_expand_migrations(
    settings: Settings, engine: Engine, newer_release: Release
) -> None:
    migrate.upgrade(engine, directory=newer_release((NEXT, True), ("9002", True)))
    assert migrate.current_revisions(engine) == {"9002"}
    assert {"rolling_probe_9001", "rolling_probe_9002"} <= {c["name"] for c in inspect(engine).get_columns("agencies")}
    with serving(settings) as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["migrations"] == "ahead-compatible"
    # Dev's auto-migrate does not trip over it either: nothing to do.
    with serving(settings.model_copy(update={"auto_migrate": True})) as client:
        assert client.get("/readyz").status_code == 200
    assert migrate.current_revisions(engine) == {"9002"}


def test_a_contract_migration_ahead_refuses_to_start_and_turns_a_running_service_unready(
    settings: Settings, engine: Engine, newer_release: Release
) -> None:
    with serving(settings) as running:
        assert running.get("/readyz").status_code == 200
        # An expand step, then one that is not marked: this code cannot serve what follows it.
        migrate.upgrade(engine, directory=newer_release((NEXT, True), ("9002", False)))
        response = running.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"] == "ahead-incompatible"
    with pytest.raises(migrate.SchemaError, match="not marked compatible") as refused, serving(settings):
        pass
    assert "9002" in str(refused.value) and HEAD in str(refused.value)


def set_revision(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


def test_a_database_behind_this_code_refuses(settings: Settings, engine: Engine) -> None:
    previous = migrate._script().get_revision(HEAD).down_revision
    assert isinstance(previous, str)
    set_revision(engine, previous)  # as if this release's migration had not run yet
    try:
        with pytest.raises(migrate.SchemaError, match="behind this code's .* run `casebridge db upgrade`"), \
                serving(settings):
            pass
    finally:
        set_revision(engine, HEAD)


def test_an_unknown_revision_refuses_even_with_auto_migrate(settings: Settings, engine: Engine) -> None:
    set_revision(engine, "feedface")  # nobody recorded it as compatible with this code
    try:
        for auto_migrate in (False, True):
            with pytest.raises(migrate.SchemaError, match="feedface, which this code .* does not know"), \
                    serving(settings.model_copy(update={"auto_migrate": auto_migrate})):
                pass
    finally:
        set_revision(engine, HEAD)
