"""Fixtures: every database test runs on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool
from support.referrals import COORDINATOR, REFERRER, referral_body
from support.schemas import accepted_referrals_match_the_schema
from support.settings import suite_settings

from app import migrate
from app.config import Settings
from app.db import make_engine
from app.main import create_app
from app.state import AppState

POSTGRES_URL = os.environ.get("CASEBRIDGE_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("CASEBRIDGE_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgres"]


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError(
            "CASEBRIDGE_TEST_REQUIRE_POSTGRES=1 but CASEBRIDGE_TEST_POSTGRES_URL is not set"
        )
    config.addinivalue_line("markers", "xdist_group(name): run on the one pytest-xdist worker of that group")


# pytest-xdist (`make test` runs `-n auto --dist loadgroup`).  Modules whose tests start several
# processes of their own (multi-worker servers, a wheel's venv, the README's shell blocks) run one at a
# time on one worker: side by side they would oversubscribe the two cores and hit their timeouts.  A
# module may also mark itself: `pytestmark = pytest.mark.xdist_group("processes")`.
PROCESS_HEAVY_MODULES = frozenset({
    "platform/test_wheel.py",
    "platform/test_concurrent_start.py",
    "platform/test_readme_blocks.py",
    "platform/test_graceful_shutdown.py",
    "platform/test_metrics_multiprocess.py",
})
# The longest tests start first, so the parallel run does not end with one worker still on one of
# them while the other idles (measured: each takes minutes where most take under a second).
LONGEST_FIRST = ("bola/test_matrix.py::test_bola_matrix", "contract/test_schemathesis.py::test_stateful")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def where(item: pytest.Item) -> str:
        return item.nodeid.removeprefix("tests/")

    for item in items:
        if where(item).split("::", 1)[0] in PROCESS_HEAVY_MODULES and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("processes"))

    def rank(item: pytest.Item) -> int:
        if where(item).startswith(LONGEST_FIRST):
            return 0
        return 1 if item.get_closest_marker("xdist_group") else 2

    items.sort(key=rank)  # stable: the order within each rank is the collection order


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (fast, and built by migrations)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    with sqlite3.connect(path) as conn:  # fold the WAL in, so one file is the whole database
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _worker_database(url: str) -> str | None:
    """Under pytest-xdist, this worker's own database: `<db>_gw0`, `<db>_gw1` … (None in one process)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{make_url(url).database}_{worker}" if worker else None


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """This process's migrated PostgreSQL database: CASEBRIDGE_TEST_POSTGRES_URL's, or under pytest-xdist
    one per worker, created beside it on the same server and dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need CASEBRIDGE_TEST_POSTGRES_URL")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL at CASEBRIDGE_TEST_POSTGRES_URL is not reachable: {exc}")
        pytest.skip("PostgreSQL is not reachable")
    url = make_url(POSTGRES_URL)
    own = _worker_database(POSTGRES_URL)
    with admin.connect() as conn:
        if own:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{own}"'))
            url = url.set(database=own)
        # A test database: a commit need not wait for its WAL to reach the disk (what sessions see is the same).
        conn.execute(text(f'ALTER DATABASE "{url.database}" SET synchronous_commit = off'))
    engine = make_engine(url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    if own:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)'))
    admin.dispose()


def _reset(engine: Engine) -> None:
    """Empty every table (but alembic_version) and restart the sequences: the freshly migrated database again.

    One round trip of DELETEs (with triggers and foreign keys off for it: replica mode) costs a few
    milliseconds where TRUNCATE, or asking first which tables hold rows, cost tens."""
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute(_reset_script(engine))  # several statements, no parameters: one round trip
        raw.commit()
    finally:
        raw.close()


_RESET_SCRIPTS: dict[str, str] = {}


def _reset_script(engine: Engine) -> str:
    """The reset's SQL for this database's tables and sequences (read once: migrations do not change
    between tests; a test that downgrades upgrades again)."""
    key = engine.url.render_as_string(hide_password=False)
    if key not in _RESET_SCRIPTS:
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        with engine.connect() as conn:
            sequences = conn.execute(text(
                "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'"
            )).scalars().all()
        _RESET_SCRIPTS[key] = "".join([
            "SET LOCAL session_replication_role = replica;",
            *(f'DELETE FROM "{t}";' for t in tables),  # noqa: S608 - the schema's own names
            *(f"ALTER SEQUENCE {s} RESTART;" for s in sequences),
        ])
    return _RESET_SCRIPTS[key]


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "casebridge.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    engine: Engine = request.getfixturevalue("postgres_engine")
    _reset(engine)  # before the test; the next test's reset clears up after it
    yield engine.url.render_as_string(hide_password=False)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return suite_settings(tmp_path, database_url)


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        # Every referral the API accepts in the suite must be valid under the schema it publishes.
        client.event_hooks["response"].append(accepted_referrals_match_the_schema(client))
        yield client


@pytest.fixture
def state(app_client: TestClient) -> AppState:
    result: AppState = app_client.app.state.cb  # type: ignore[attr-defined]
    return result


@pytest.fixture
def demo(state: AppState) -> dict[str, dict[str, Any]]:
    """The demo network, seeded; credentials by client id."""
    from app.db import transaction
    from app.demo import seed_demo

    with transaction(state.sessions) as session:
        credentials = seed_demo(session, state)
    return {c["client_id"]: c for c in credentials}


@pytest.fixture
def token_for(app_client: TestClient, demo: dict[str, dict[str, Any]]) -> Callable[..., str]:
    def _token(client_id: str, act: str | None = None) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": demo[client_id]["client_secret"],
        }
        if act:
            form["act"] = act
        response = app_client.post("/v1/token", data=form)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    return _token


@pytest.fixture
def auth(token_for: Callable[..., str]) -> Callable[..., dict[str, str]]:
    cache: dict[str, str] = {}

    def _headers(client_id: str, **extra: str) -> dict[str, str]:
        if client_id not in cache:
            cache[client_id] = token_for(client_id)
        return {"Authorization": f"Bearer {cache[client_id]}", **extra}

    return _headers


@pytest.fixture
def post_referral(app_client: TestClient, auth: Callable[..., dict[str, str]]) -> Callable[..., dict[str, Any]]:
    def _post(client_id: str = REFERRER, **changes: Any) -> dict[str, Any]:
        response = app_client.post("/v1/referrals", json=referral_body(**changes), headers=auth(client_id))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return _post


@pytest.fixture
def move(app_client: TestClient, auth: Callable[..., dict[str, str]]) -> Callable[..., dict[str, Any]]:
    """Drive a referral through transitions: move(id, "triaged", "accepted", ("assigned", [...]))."""

    def _move(referral_id: str, *steps: Any, client_id: str = COORDINATOR) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for step in steps:
            body: dict[str, Any]
            body = {"to": step[0], **step[1]} if isinstance(step, tuple) else {"to": step}
            if body["to"] == "closed":
                body.setdefault("outcome", "risk_reduced")
            if body["to"] in ("declined", "withdrawn", "transferred"):
                body.setdefault("reason", "test reason")
            if body["to"] == "transferred":
                body.setdefault("to_network", "demo-town")
            if body["to"] == "assigned":
                body.setdefault("agencies", ["youth-ngo-bridges"])
            response = app_client.post(
                f"/v1/referrals/{referral_id}/transitions", json=body, headers=auth(client_id)
            )
            assert response.status_code == 200, response.text
            result = response.json()
        return result

    return _move
