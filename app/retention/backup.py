"""Consistent backups and restores; a restore is followed by re-applying the erasure ledger."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says why."""


def sqlite_path(database_url: str) -> Path | None:
    """The database file of a SQLite URL, None for any other backend."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Online backup API into a private temporary file, then an atomic rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        dest = sqlite3.connect(tmp)
        try:
            source.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dest.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def backup_sqlite(database: Path, target: Path) -> None:
    """A consistent copy of a live database (writers may keep writing meanwhile)."""
    if not database.exists():
        raise BackupError(f"no database at {database}")
    if target.exists():
        raise BackupError(f"{target} exists; refusing to overwrite it")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        _copy(source, target)
    finally:
        source.close()


def check_backup(path: Path) -> None:
    """A readable SQLite file that passes its integrity check."""
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    with open(path, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise BackupError(f"{path} is not a SQLite database")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()
    finally:
        conn.close()
    if not result or result[0] != "ok":
        raise BackupError(f"{path} fails its integrity check")


def restore_sqlite(backup: Path, database: Path) -> None:
    """Copy a backup over the database through the backup API (the WAL is folded in properly)."""
    check_backup(backup)
    database.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        dest = sqlite3.connect(database, timeout=30)
        try:
            source.backup(dest)
            dest.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            dest.close()
    finally:
        source.close()
    os.chmod(database, 0o600)


def postgres_instructions(database_url: str, path: Path, *, restore: bool) -> tuple[str, bool]:
    """What to run for PostgreSQL (pg_dump / pg_restore), and whether that tool is installed."""
    url = make_url(database_url).set(drivername="postgresql")
    safe = url.render_as_string(hide_password=True)
    if restore:
        tool = "pg_restore"
        text = (
            f"pg_restore --clean --if-exists --no-owner --dbname '{safe}' '{path}'\n"
            "then start the service (or run `casebridge retention reapply`): every erasure and\n"
            "purge in the erasure ledger after the dump was taken is applied again before serving."
        )
    else:
        tool = "pg_dump"
        text = (
            f"pg_dump --format=custom --no-owner --file '{path}' '{safe}'\n"
            "(a consistent snapshot; the password comes from PGPASSWORD or ~/.pgpass). Keep the\n"
            "erasure ledger and the keyring apart from the dump: the ledger keeps erasures applied."
        )
    return text, shutil.which(tool) is not None
