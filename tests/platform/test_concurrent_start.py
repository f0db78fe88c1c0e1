"""Many workers start together on an empty database: one migrates and seeds, every one serves.

Real processes: `casebridge serve --workers 4` in dev (auto-migrate, demo seed) on a database
made empty for each run. Before the startup lock, two workers on PostgreSQL failed 3 starts of 3
(UniqueViolation on alembic_version, then on pk_agencies; "Child process failed to start").
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from app.db import make_engine

POSTGRES_URL = os.environ.get("CASEBRIDGE_TEST_POSTGRES_URL")
CASEBRIDGE = str(Path(sys.executable).with_name("casebridge"))
WORKERS = 4
POSTGRES_RUNS = 5
START_TIMEOUT = 180.0  # a loaded 2-core CI machine imports the app slowly in 4 processes at once
# Lines that mean a worker did not come up, or that something went wrong on the way.
FAILURE_MARKS = ("Child process", "died", "Traceback", '"level": "error"', '"level": "critical"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    assert POSTGRES_URL
    server = make_url(POSTGRES_URL)
    admin = create_engine(server.set(drivername="postgresql+psycopg", database="postgres"),
                          isolation_level="AUTOCOMMIT")
    name = f"cb_start_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - no server, or no right to create databases
        admin.dispose()
        pytest.skip(f"cannot create a PostgreSQL database: {type(exc).__name__}")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def service_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """A dev service's environment (it migrates and seeds), on SQLite in data_dir unless a URL is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBRIDGE_")}
    env.update(CASEBRIDGE_ENV="dev", CASEBRIDGE_DATA_DIR=str(data_dir), CASEBRIDGE_POLICY_RELOAD_SECONDS="0")
    if database_url:
        env["CASEBRIDGE_DATABASE_URL"] = database_url
    return env


@contextmanager
def serving(data_dir: Path, database_url: str | None, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = service_env(data_dir, database_url)
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [CASEBRIDGE, "serve", "--workers", str(WORKERS), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        yield process, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_all_started(process: subprocess.Popen[bytes], port: int, log: Path) -> str:
    """Wait for /readyz 200 and a startup line from every worker; the log so far."""
    deadline = time.monotonic() + START_TIMEOUT
    ready = False
    while time.monotonic() < deadline:
        output = log.read_text(errors="replace")
        marks = [m for m in FAILURE_MARKS if m in output]
        assert not marks, f"a worker failed ({marks}):\n{output[-4000:]}"
        assert process.poll() is None, f"the server exited ({process.returncode}):\n{output[-4000:]}"
        if not ready:
            with suppress(httpx.TransportError):
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        if ready and output.count("Application startup complete.") == WORKERS:
            return output
        time.sleep(0.2)
    raise AssertionError(f"not every worker started in {START_TIMEOUT:g} s:\n{log.read_text(errors='replace')[-4000:]}")


def assert_a_demo_token_works_on_every_connection(port: int, data_dir: Path) -> None:
    """A token from one worker is honoured by whichever worker takes the next connection."""
    clients = {c["client_id"]: c for c in json.loads((data_dir / "demo-clients.json").read_text())}
    coordinator = clients["municipality-coordinator"]
    base = f"http://127.0.0.1:{port}"
    response = httpx.post(f"{base}/v1/token", data={
        "grant_type": "client_credentials", "client_id": coordinator["client_id"],
        "client_secret": coordinator["client_secret"]}, timeout=30)
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}", "X-Purpose": "safeguarding_assessment"}
    for _ in range(3 * WORKERS):  # a new connection each time: the kernel spreads them over the workers
        with httpx.Client(base_url=base, timeout=30) as client:
            listed = client.get("/v1/referrals", headers=headers)
            assert listed.status_code == 200, listed.text
            assert listed.json()["items"], "the demo seed holds referrals"


def start_and_check(tmp_path: Path, database_url: str | None, run: int) -> Path:
    data_dir = tmp_path / f"data-{run}"
    log = tmp_path / f"serve-{run}.log"
    with serving(data_dir, database_url, log) as (process, port):
        output = wait_until_all_started(process, port, log)
        assert output.count("seeded the demo network") == 1, output[-4000:]
        assert_a_demo_token_works_on_every_connection(port, data_dir)
        if database_url is None:
            assert_files_are_private(data_dir)
        time.sleep(0.5)  # anything a worker logs after its start
        marks = [m for m in FAILURE_MARKS if m in log.read_text(errors="replace")]
        assert not marks, log.read_text(errors="replace")[-4000:]
    return log


def assert_files_are_private(data_dir: Path) -> None:
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("casebridge.db", "casebridge.db-wal", "casebridge.db-shm", "keyring.json", "demo-clients.json"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name


@pytest.mark.skipif(not POSTGRES_URL, reason="needs CASEBRIDGE_TEST_POSTGRES_URL (its server makes the databases)")
def test_four_workers_start_together_on_an_empty_postgresql_database_every_time(tmp_path: Path) -> None:
    for run in range(POSTGRES_RUNS):
        with fresh_postgres_database() as url:
            start_and_check(tmp_path, url, run)


def test_four_workers_start_together_on_a_new_sqlite_database(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: the files' modes must not depend on a strict one
    try:
        start_and_check(tmp_path, None, 0)
    finally:
        os.umask(previous)


REFUSE_AGENCIES = {
    # The database refuses the demo seed's first agency as a duplicate key, quoting it as PostgreSQL does.
    "postgres": """
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
          RAISE unique_violation USING MESSAGE = 'duplicate key value violates unique constraint "pk_agencies"',
            DETAIL = 'Key (id)=(' || NEW.id || ') already exists.', CONSTRAINT = 'pk_agencies', TABLE = 'agencies';
        END $$;
        CREATE TRIGGER refuse BEFORE INSERT ON agencies FOR EACH ROW EXECUTE FUNCTION refuse()""",
    "sqlite": """
        CREATE TRIGGER refuse BEFORE INSERT ON agencies
        BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: agencies.id'); END""",
}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_failed_start_says_why_and_quotes_no_value(tmp_path: Path, backend: str) -> None:
    if backend == "postgres" and not POSTGRES_URL:
        pytest.skip("needs CASEBRIDGE_TEST_POSTGRES_URL")
    with fresh_postgres_database() if backend == "postgres" else nullcontext(None) as url:
        data_dir = tmp_path / "data"
        env = service_env(data_dir, url)
        subprocess.run([CASEBRIDGE, "db", "upgrade"], env=env, check=True, capture_output=True)  # noqa: S603
        engine = make_engine(url or f"sqlite:///{data_dir / 'casebridge.db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql(REFUSE_AGENCIES[backend])
        engine.dispose()
        started = subprocess.run(  # noqa: S603 - one worker: the server exits when its start fails
            [CASEBRIDGE, "serve", "--port", str(free_port())], env=env, capture_output=True, timeout=START_TIMEOUT)
    output = (started.stdout + started.stderr).decode(errors="replace")
    assert started.returncode != 0
    assert "startup failed: the database refused it" in output
    assert ("pk_agencies" if backend == "postgres" else "agencies.id") in output  # what to look at
    assert "city-municipality" not in output  # neither the key in the detail nor a statement's parameter
    assert "Municipality" not in output
