"""Alembic, driven from code: upgrade to head, and tell whether a database is at head."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from app.config import REPO_ROOT

if TYPE_CHECKING:
    from app.crypto.keyring import Keyring

MIGRATIONS_DIR = REPO_ROOT / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade(engine: Engine, revision: str = "head", *, keyring: Keyring | None = None) -> None:
    """`keyring`: for revisions that seal existing values (0007); an empty database needs none."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["keyring"] = keyring
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str, *, keyring: Keyring | None = None) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["keyring"] = keyring
        command.downgrade(config, revision)


@cache
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as connection:
        return frozenset(MigrationContext.configure(connection).get_current_heads())


def is_at_head(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions()


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
