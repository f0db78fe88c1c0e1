"""Build the service's state from settings: keys, database, migrations, demo seed."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import migrate
from app.agreements.ledger import SignatureLedger
from app.audit.service import AuditLog
from app.auth.ratelimit import TokenEndpointLimits
from app.auth.tokens import TokenService
from app.config import Settings
from app.crypto.envelope import BlindIndex, Envelope
from app.crypto.keyring import Keyring, open_keyring
from app.crypto.reload import KeyringFile
from app.crypto.secrets import SecretHasher
from app.db import LoopReads, make_engine, make_read_sessionmaker, make_sessionmaker, transaction
from app.policy.loader import LoadResult
from app.policy.store import PolicyStore
from app.referrals.schemas import referral_field_paths
from app.state import AppState
from app.training_network.marks import training_event
from app.vocabularies import mappings

log = logging.getLogger("casebridge.startup")


class StartupError(RuntimeError):
    """The service could not start; the message says why without quoting any value."""


def start_service(settings: Settings) -> AppState:
    """The server's start: state (migrating in dev), a schema this code can serve, then, one process
    at a time, the erasures the database has not seen re-applied and (dev) the demo seeded."""
    from app.retention.reapply import reapply

    with _startup_errors():
        state = build_state(settings)
        try:
            schema = migrate.require_servable(state.engine)
            if schema.status != "ok":
                log.warning("serving a database ahead of this code", extra={"schema": schema.detail})
            with migrate.startup_lock(state.engine):
                # Erasures recorded after the database's backup was taken are applied before serving.
                reapply(state)
                if settings.should_seed_demo:
                    _seed_demo_if_empty(state)
        except BaseException:
            state.engine.dispose()
            raise
    return state


def build_state(settings: Settings, *, migrate_now: bool | None = None) -> AppState:
    if settings.is_dev:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.data_dir, 0o700)
    keyring, notices = _open_keyring(settings)
    for notice in notices:
        log.info(notice)
    engine = make_engine(settings.resolved_database_url, threads=settings.worker_threads,
                         writer_wait_seconds=settings.sqlite_writer_wait_seconds)
    if settings.should_migrate if migrate_now is None else migrate_now:
        try:
            migrate.upgrade(engine, keyring=keyring)  # 0007 seals existing free text with subjects' keys
        except BaseException:
            engine.dispose()
            raise
    tokens = TokenService(
        keyring,
        issuer=settings.issuer,
        audience=settings.audience,
        ttl_seconds=settings.token_ttl_seconds,
    )
    sessions = make_sessionmaker(engine)
    ledger = SignatureLedger(sessions)
    policies = PolicyStore(referral_field_paths(), gate=ledger)
    load_policies(policies, settings)
    mappings.use_directory(settings.policies_dir / "mappings")
    keyring.subscribe(tokens.refresh_keys)
    keyring_file = (
        None if settings.keyring_json else KeyringFile(keyring, settings.resolved_keyring_path).attach()
    )
    hasher = SecretHasher(keyring)
    state = AppState(
        settings=settings,
        keyring=keyring,
        engine=engine,
        sessions=sessions,
        read_sessions=make_read_sessionmaker(engine),
        loop_reads=LoopReads(engine),
        tokens=tokens,
        envelope=Envelope(keyring),
        blind_index=BlindIndex(keyring),
        policies=policies,
        audit=AuditLog(keyring, BlindIndex(keyring), origin=settings.audit_origin,
                       marks_training=lambda event: training_event(policies.current, event)),
        secret_hasher=hasher,
        token_limits=TokenEndpointLimits(settings),
        dummy_secret_hash=hasher.dummy_hash(),
        keyring_file=keyring_file,
    )
    ledger.clock = lambda: state.clock()  # a test's clock, when it sets one
    return state


def _open_keyring(settings: Settings) -> tuple[Keyring, list[str]]:
    def open_it() -> tuple[Keyring, list[str]]:
        return open_keyring(
            path=settings.resolved_keyring_path,
            inline_json=settings.keyring_json.get_secret_value() if settings.keyring_json else None,
            create_if_missing=settings.is_dev,
            strict=not settings.is_dev,
        )

    if not settings.is_dev or settings.keyring_json is not None:
        return open_it()
    # Workers starting together on a fresh data dir must all load one keyring, not each make its own.
    path = settings.resolved_keyring_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with migrate.file_lock(path.with_name(f".{path.name}.lock"), migrate.LOCK_WAIT_SECONDS, "creating the keyring"):
        return open_it()


def seed_demo_if_empty(state: AppState) -> bool:
    """Seed the demo network into an empty database; True when it did.

    Any number of processes may call it at once: one seeds, the others then find it seeded.
    """
    with migrate.startup_lock(state.engine):
        return _seed_demo_if_empty(state)


def _seed_demo_if_empty(state: AppState) -> bool:
    """seed_demo_if_empty, for a caller that holds the startup lock."""
    from app.demo import (
        database_is_empty,
        people_path,
        seed_demo,
        seed_demo_cases,
        seed_demo_people,
        write_credentials,
    )
    from app.training_network import create as training_network

    with transaction(state.sessions) as session:
        if not database_is_empty(session):
            return False
        credentials = seed_demo(session, state)
        seed_demo_cases(session, state)  # referrals in every status, so each role's first call shows some
        demo_people = seed_demo_people(session)
        training = training_network.seed_demo_network(session, state)  # its people write beside the demo's
    path = write_credentials(credentials, state.settings)
    write_credentials(demo_people, state.settings, people_path(state.settings))
    if training is not None:
        training_network.write_credentials(state, training_network.DEMO_PLAN, training)
    log.info("seeded the demo network", extra={"credentials_file": str(path)})
    return True


def load_policies(store: PolicyStore, settings: Settings, session: Session | None = None) -> LoadResult:
    """Load (or reload) the agreements; a broken file is refused and logged, the rest serve.

    New versions are recorded as proposed in `session` (a request's own), else in a unit of work of their own.
    """
    result = store.reload(settings.policies_dir, session)
    for error in result.errors:
        log.error("agreement refused", extra={"file": error.file, "line": error.line, "reason": error.reason})
    for warning in result.warnings:
        log.warning("agreement warning", extra={"warning": warning})
    in_force = [f"{a.id}@v{a.version}" for a in result.policy_set]
    log.info("agreements loaded", extra={"agreements": in_force, "errors": len(result.errors)})
    return result


@contextmanager
def _startup_errors() -> Iterator[None]:
    """A database error at startup is told in one line that quotes no value.

    The server logs a failed start's traceback, and a statement error's text holds the row's
    values (a unique violation's detail quotes the key); parameters are hidden by the engine.
    """
    try:
        yield
    except DBAPIError as exc:
        reason = _database_reason(exc)
        log.error("startup failed", extra={"error_type": type(exc).__name__, "reason": reason,
                                           "trace": traceback.format_tb(exc.__traceback__)})
        raise StartupError(f"startup failed: the database refused it ({reason})") from None


def _database_reason(exc: DBAPIError) -> str:
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    diag = getattr(orig, "diag", None)
    if sqlstate and diag is not None:  # PostgreSQL: its message may quote a value; name the error and object
        named = [f"{kind} {value}" for kind, value in (
            ("constraint", diag.constraint_name), ("table", diag.table_name), ("column", diag.column_name),
        ) if value]
        return ", ".join([f"{type(orig).__name__} (SQLSTATE {sqlstate})", *named])
    # SQLite's messages, and a client's failure to connect, name objects and hosts, not values.
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__
