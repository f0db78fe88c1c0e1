"""Migrations are the schema: they agree with the models and run both ways, on both databases."""

from __future__ import annotations

from pathlib import Path

import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import app.models  # noqa: F401
from app import migrate
from app.db import Base, make_engine
from app.main import create_app

REPO = Path(__file__).resolve().parents[2]


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], diff
        assert migrate.is_at_head(engine)
    finally:
        engine.dispose()


def test_migrations_downgrade_to_base_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert migrate.is_at_head(engine)
        assert {"agencies", "api_clients"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migration_files_have_dated_names() -> None:
    names = [p.name for p in (REPO / "migrations" / "versions").glob("*.py")]
    assert names
    for name in names:
        assert name[:8].isdigit() and name[8] == "_", name


def test_openapi_yaml_is_what_the_app_serves() -> None:
    committed = yaml.safe_load((REPO / "openapi.yaml").read_text())
    assert committed == create_app().openapi(), "run `make openapi` to regenerate openapi.yaml"


def test_operation_ids_are_explicit_and_unique() -> None:
    spec = create_app().openapi()
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert all("__" not in i for i in ids)
    tags = {t for path in spec["paths"].values() for op in path.values() for t in op.get("tags", [])}
    assert {"auth", "admin", "health"} <= tags
