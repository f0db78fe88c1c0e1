"""Alembic, driven from code: upgrade under a lock, and tell whether this code can serve a database.

Any number of processes may start at once: migrating (and seeding the demo) takes a lock per
database, so one process does it and the others wait, then find it done.  A database may be
ahead of the code by migrations marked ``compatible_with_previous = True`` (expand-only, see
docs/upgrades.md): the process that ran them recorded in ``service_markers`` which code
revisions can still serve the schema, so the previous release stays ready during a rolling
upgrade without knowing the newer migration files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.config import ConfigError
from app.db import READ_ONLY, UTCDateTime, utcnow
from app.shipped import shipped

if TYPE_CHECKING:
    from app.crypto.keyring import Keyring

MIGRATIONS_DIR = shipped("migrations")
LOCK_WAIT_SECONDS = 900.0
"""How long a starting process waits for another one's migration before it gives up."""
# One advisory lock per database (the key is per database, so databases on one server don't meet).
_PG_LOCK_KEY = 0x43_42_4D_49_47  # "CBMIG"
_PG_SEED_KEY = 0x43_42_53_45_45_44  # "CBSEED": the demo seed's own (startup holds the other meanwhile)
COMPATIBILITY_MARKER = "schema_compatibility"
_markers = sa.table("service_markers", sa.column("name", sa.String), sa.column("value", sa.Text),
                    sa.column("updated_at", UTCDateTime()))
log = logging.getLogger("casebridge.startup")


class SchemaError(ConfigError):
    """The database's schema is not one this code can serve, or could not be brought to it."""


def alembic_config(url: str, directory: Path | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(directory or MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade(engine: Engine, revision: str = "head", *, keyring: Keyring | None = None,
            directory: Path | None = None) -> None:
    """Migrate up to `revision`, one process at a time (see `startup_lock`).

    `keyring`: for revisions that seal existing values (0007); an empty database needs none.
    To "head" on a database already ahead of this code by compatible migrations: nothing to do.
    `directory`: another migrations folder (tests of a newer release's migrations).
    """
    _migrate(engine, command.upgrade, revision, keyring, directory)


def downgrade(engine: Engine, revision: str, *, keyring: Keyring | None = None,
              directory: Path | None = None) -> None:
    _migrate(engine, command.downgrade, revision, keyring, directory)


def _migrate(engine: Engine, run: Any, revision: str, keyring: Keyring | None, directory: Path | None) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False), directory)
    script = ScriptDirectory.from_config(config)
    with startup_lock(engine), engine.begin() as connection:
        if run is command.upgrade and revision == "head":
            found = _schema_state(connection, script)
            if found.status == "ahead":
                log.info("not migrating: " + found.detail)
                return
            if found.status in ("ahead-incompatible", "unknown"):
                raise SchemaError(found.detail)
        config.attributes["connection"] = connection
        config.attributes["keyring"] = keyring
        run(config, revision)
        _record_compatibility(connection, script)


@contextmanager
def startup_lock(engine: Engine, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Held while migrating, re-applying erasures or seeding: one process at a time per database.

    PostgreSQL: a session advisory lock, on a connection of its own (so it needs a direct or
    session-pooled connection, not a transaction-pooling proxy).  SQLite: flock(2) on
    `<db>-migrate.lock` beside the file.  Not the writer turn: its wait is short, and a
    migration may take minutes.  Not re-entrant.
    """
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, wait_seconds):
            yield
        return
    database = make_url(engine.url).database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        with file_lock(Path(f"{database}-migrate.lock"), wait_seconds, "migrating or seeding"):
            yield
        return
    yield


def lock_for_seeding(session: Session) -> None:
    """Until the session's transaction ends, be the only one seeding: a second seeder then finds
    what the first made.  PostgreSQL: a transaction advisory lock; a SQLite write transaction is
    exclusive already (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SEED_KEY})


@contextmanager
def _advisory_lock(engine: Engine, wait_seconds: float) -> Iterator[None]:
    with engine.connect() as connection:
        if not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_LOCK_KEY}):
            log.info("waiting for another process", extra={"lock": "advisory", "doing": "migrating or seeding"})
            try:
                connection.execute(text(f"SET LOCAL lock_timeout = {int(wait_seconds * 1000)}"))
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                raise SchemaError(f"another process has been migrating the database for over "
                                  f"{wait_seconds:g} s; gave up waiting") from None
        connection.commit()  # the lock is the session's: it outlives this transaction
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                connection.commit()
            except SQLAlchemyError:
                connection.invalidate()  # a closed session holds no lock; never pool one that might


@contextmanager
def file_lock(path: Path, wait_seconds: float, doing: str) -> Iterator[None]:
    """An exclusive flock(2) on `path` (created 0600), waited for at most `wait_seconds`."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline, pause, told = time.monotonic() + wait_seconds, 0.01, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SchemaError(f"another process has held {path.name} ({doing}) for over "
                                      f"{wait_seconds:g} s; gave up waiting") from None
                if not told:
                    log.info("waiting for another process", extra={"lock": path.name, "doing": doing})
                    told = True
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- which code can serve which schema -----------------------------------------------------


@dataclass(frozen=True)
class SchemaState:
    """How the database's revision stands to this code's head.

    ``ok``: at head.  ``ahead``: ahead by migrations marked compatible (ready).  ``behind``:
    needs `casebridge db upgrade`.  ``ahead-incompatible``: ahead by a contract migration (needs
    the newer code).  ``unknown``: a revision this code cannot place.
    """

    status: Literal["ok", "ahead", "behind", "ahead-incompatible", "unknown"]
    detail: str

    @property
    def servable(self) -> bool:
        return self.status in ("ok", "ahead")


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revisions() -> frozenset[str]:
    return frozenset(_script().get_heads())


def current_revisions(engine: Engine) -> frozenset[str]:
    with _reading(engine) as connection:
        return frozenset(MigrationContext.configure(connection).get_current_heads())


def is_at_head(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions()


def schema_state(engine: Engine) -> SchemaState:
    with _reading(engine) as connection:
        return _schema_state(connection, _script())


def _reading(engine: Engine) -> Connection:
    """A connection that only reads: on SQLite it takes neither the write lock nor the writer turn."""
    connection = engine.connect()
    connection.execution_options(**{READ_ONLY: True})
    return connection


def require_servable(engine: Engine) -> SchemaState:
    """The schema state if this code can serve the database; else SchemaError saying what to do."""
    found = schema_state(engine)
    if not found.servable:
        raise SchemaError(found.detail)
    return found


def _schema_state(connection: Connection, script: ScriptDirectory) -> SchemaState:
    current = frozenset(MigrationContext.configure(connection).get_current_heads())
    heads = frozenset(script.get_heads())
    code = ", ".join(sorted(heads))
    if current == heads:
        return SchemaState("ok", f"the database is at this code's revision {code}")
    if not current:
        return SchemaState("behind", "the database has no schema yet: run `casebridge db upgrade`")
    if len(current) == 1 and len(heads) == 1:
        (revision,), (head,) = current, heads
        if revision in _lineage(script, head):
            return SchemaState("behind", f"the database is at revision {revision}, behind this code's {head}: "
                               "run `casebridge db upgrade`")
        marker = _read_compatibility(connection, revision)
        if marker is not None and head in marker.get("serves_code_at", []):
            return SchemaState("ahead", f"the database is at revision {revision}, ahead of this code's {head} "
                               "by migrations marked compatible with it")
        if marker is not None and head in marker.get("lineage", []):
            return SchemaState("ahead-incompatible", (
                f"the database is at revision {revision}, ahead of this code's {head} by a migration not "
                f"marked compatible with it (a contract migration): run the code of {revision}"))
    db = ", ".join(sorted(current))
    return SchemaState("unknown", f"the database is at revision {db}, which this code ({code}) does not know "
                       "and no migration recorded as compatible: run the code that migrated it")


def _lineage(script: ScriptDirectory, revision: str) -> list[str]:
    """`revision` and every revision before it, newest first."""
    return [r.revision for r in script.iterate_revisions(revision, "base")]


def _serves(script: ScriptDirectory, revision: str) -> list[str]:
    """The code revisions that can serve a schema at `revision`: itself, then back through each
    migration marked ``compatible_with_previous = True`` (expand-only)."""
    serves = [revision]
    step = script.get_revision(revision)
    while (step is not None and getattr(step.module, "compatible_with_previous", False) is True
           and isinstance(step.down_revision, str)):
        serves.append(step.down_revision)
        step = script.get_revision(step.down_revision)
    return serves


def _record_compatibility(connection: Connection, script: ScriptDirectory) -> None:
    """Tell older code (which lacks the newer migration files) whether it can serve this schema."""
    current = MigrationContext.configure(connection).get_current_heads()
    if len(current) != 1 or not sa.inspect(connection).has_table("service_markers"):
        return
    revision = current[0]
    value = json.dumps({"revision": revision, "serves_code_at": _serves(script, revision),
                        "lineage": _lineage(script, revision)})
    now = utcnow()
    changed = connection.execute(
        _markers.update().where(_markers.c.name == COMPATIBILITY_MARKER).values(value=value, updated_at=now)
    ).rowcount
    if not changed:
        connection.execute(_markers.insert().values(name=COMPATIBILITY_MARKER, value=value, updated_at=now))


def _read_compatibility(connection: Connection, revision: str) -> dict[str, Any] | None:
    """The compatibility recorded for `revision` by the code that migrated to it; None if none."""
    try:
        with connection.begin_nested():
            value = connection.scalar(
                sa.select(_markers.c.value).where(_markers.c.name == COMPATIBILITY_MARKER))
    except SQLAlchemyError:  # no such table (any more): nothing recorded
        return None
    try:
        marker = json.loads(value) if value else None
    except ValueError:
        return None
    return marker if isinstance(marker, dict) and marker.get("revision") == revision else None


def migration_keyring(config: Config | None, why: str) -> Any:
    """The keyring for a migration that seals data: handed over by `casebridge`, else from settings.

    `why` says which migration needs it for what; without a keyring the migration is refused.
    """
    keyring = config.attributes.get("keyring") if config is not None else None
    if keyring is not None:
        return keyring
    from app.config import load_settings
    from app.crypto.keyring import open_keyring

    try:
        settings = load_settings()
        secret = settings.keyring_json.get_secret_value() if settings.keyring_json else None
        keyring, _ = open_keyring(path=settings.resolved_keyring_path, inline_json=secret,
                                  create_if_missing=False, strict=not settings.is_dev)
    except Exception as exc:  # noqa: BLE001 - any failure means: no keyring, refuse
        raise RuntimeError(
            f"{why} needs the keyring: run `casebridge db upgrade`, or set CASEBRIDGE_KEYRING_PATH "
            f"(or CASEBRIDGE_KEYRING_JSON) for alembic ({type(exc).__name__})"
        ) from None
    return keyring


class SubjectKeys:
    """Subjects' data keys for a migration that seals or opens data; the keyring is opened on first need.

    `of` answers None for no subject, an unknown one, or one whose key was destroyed (erased).
    """

    def __init__(self, connection: Connection, config: Config | None, why: str) -> None:
        self.connection, self.config, self.why = connection, config, why
        self.envelope: Any = None
        self.keys: dict[str, Any] = {}

    def of(self, subject_id: str | None) -> Any:
        if subject_id is None:
            return None
        if subject_id not in self.keys:
            row = self.connection.execute(
                text("SELECT wrapped_key, kek_id FROM subjects WHERE id = :id"), {"id": subject_id}
            ).first()
            if row is None or row.wrapped_key is None or row.kek_id is None:
                self.keys[subject_id] = None
            else:
                self.keys[subject_id] = self._unwrap(subject_id, row.kek_id, bytes(row.wrapped_key))
        return self.keys[subject_id]

    def _unwrap(self, subject_id: str, kek_id: str, wrapped: bytes) -> Any:
        from app.crypto.aead import DecryptionError
        from app.crypto.envelope import Envelope, WrappedKey

        if self.envelope is None:
            self.envelope = Envelope(migration_keyring(self.config, self.why))
        try:
            return self.envelope.unwrap(subject_id, WrappedKey(kek_id, wrapped))
        except DecryptionError:
            raise RuntimeError(
                f"{self.why.split()[0]} cannot unwrap the data key of subject {subject_id}: "
                "is this the service's keyring?"
            ) from None
