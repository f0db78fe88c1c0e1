"""Build the service's state from settings: keys, database, migrations, demo seed."""

from __future__ import annotations

import logging
import os

from app import migrate
from app.audit.service import AuditLog
from app.auth.ratelimit import TokenEndpointLimits
from app.auth.tokens import TokenService
from app.config import Settings
from app.crypto.envelope import BlindIndex, Envelope
from app.crypto.keyring import open_keyring
from app.crypto.reload import KeyringFile
from app.crypto.secrets import SecretHasher
from app.db import make_engine, make_read_sessionmaker, make_sessionmaker, transaction
from app.policy.loader import LoadResult
from app.policy.store import PolicyStore
from app.referrals.schemas import referral_field_paths
from app.state import AppState

log = logging.getLogger("casebridge.startup")


def build_state(settings: Settings, *, migrate_now: bool | None = None) -> AppState:
    if settings.is_dev:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.data_dir, 0o700)
    keyring, notices = open_keyring(
        path=settings.resolved_keyring_path,
        inline_json=settings.keyring_json.get_secret_value() if settings.keyring_json else None,
        create_if_missing=settings.is_dev,
        strict=not settings.is_dev,
    )
    for notice in notices:
        log.info(notice)
    engine = make_engine(settings.resolved_database_url, threads=settings.worker_threads)
    if settings.should_migrate if migrate_now is None else migrate_now:
        migrate.upgrade(engine, keyring=keyring)  # 0007 seals existing free text with subjects' keys
    tokens = TokenService(
        keyring,
        issuer=settings.issuer,
        audience=settings.audience,
        ttl_seconds=settings.token_ttl_seconds,
    )
    policies = PolicyStore(referral_field_paths())
    load_policies(policies, settings)
    keyring.subscribe(tokens.refresh_keys)
    keyring_file = (
        None if settings.keyring_json else KeyringFile(keyring, settings.resolved_keyring_path).attach()
    )
    hasher = SecretHasher(keyring)
    return AppState(
        settings=settings,
        keyring=keyring,
        engine=engine,
        sessions=make_sessionmaker(engine),
        read_sessions=make_read_sessionmaker(engine),
        tokens=tokens,
        envelope=Envelope(keyring),
        blind_index=BlindIndex(keyring),
        policies=policies,
        audit=AuditLog(keyring, BlindIndex(keyring), origin=settings.audit_origin),
        secret_hasher=hasher,
        token_limits=TokenEndpointLimits(settings),
        dummy_secret_hash=hasher.dummy_hash(),
        keyring_file=keyring_file,
    )


def seed_demo_if_empty(state: AppState) -> bool:
    """Seed the demo network into an empty database; True when it did."""
    from app.demo import database_is_empty, seed_demo, write_credentials

    with transaction(state.sessions) as session:
        if not database_is_empty(session):
            return False
        credentials = seed_demo(session, state)
    path = write_credentials(credentials, state.settings)
    log.info("seeded the demo network", extra={"credentials_file": str(path)})
    return True


def load_policies(store: PolicyStore, settings: Settings) -> LoadResult:
    """Load (or reload) the agreements; a broken file is refused and logged, the rest serve."""
    result = store.reload(settings.policies_dir)
    for error in result.errors:
        log.error("agreement refused", extra={"file": error.file, "line": error.line, "reason": error.reason})
    for warning in result.warnings:
        log.warning("agreement warning", extra={"warning": warning})
    in_force = [f"{a.id}@v{a.version}" for a in result.policy_set]
    log.info("agreements loaded", extra={"agreements": in_force, "errors": len(result.errors)})
    return result
