"""People: accounts, passwords (argon2id), second factors (TOTP), lockout; no HTTP here.

Each person is also a client of the API with the same id (``api_clients``), whose secret hash no
secret matches: the console reaches case data only as that client, through the API.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agencies.models import Agency, ApiClient
from app.agencies.schemas import Role
from app.console.models import ConsoleSession, Person
from app.crypto import aead
from app.crypto.keyring import KeyKind, Keyring, KeyringError
from app.db import utcnow
from app.errors import AppError

PERSON_SECRET_HASH = "person$"  # noqa: S105 - a marker no client secret verifies against (not a hash)
SECOND_FACTOR_ROLES = frozenset({Role.coordinator.value, Role.auditor.value, Role.admin.value})
MIN_PASSWORD = 12
MAX_PASSWORD = 128
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
TOTP_INFO = b"casebridge console totp v1"
_COMMON = frozenset(
    (Path(__file__).parent / "common_passwords.txt").read_text(encoding="utf-8").split()
)
# argon2id, RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes).
_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)
_DUMMY_HASH = _hasher.hash("no person has this password")


class PersonInvalid(AppError):
    status, slug, title = 422, "person-invalid", "The person cannot be saved"


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """What a password check found: the person (when it succeeded) or the reason it did not."""

    person: Person | None
    reason: str  # ok | unknown | wrong-password | locked | disabled | no-password


def password_problems(password: str, *, person_id: str = "", name: str = "") -> list[str]:
    """NIST SP 800-63B's rules: long enough, not too long to hash, not a known-breached or derived one."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append("too-short")
    if len(password) > MAX_PASSWORD:
        problems.append("too-long")
    lowered = password.casefold()
    if lowered in _COMMON or len(set(lowered)) < 4:
        problems.append("common")
    if any(part and len(part) >= 4 and part.casefold() in lowered
           for part in (person_id, *name.split())):
        problems.append("personal")
    return problems


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_person(
    session: Session, *, person_id: str, agency_id: str, name: str, roles: Iterable[str],
    password: str | None, locale: str | None = None, oidc_issuer: str | None = None,
    oidc_subject: str | None = None,
) -> Person:
    """A new person and their API client of the same id (refused if either id is taken)."""
    wanted = sorted(set(roles))
    unknown = [r for r in wanted if r not in {role.value for role in Role}]
    if unknown or not wanted:
        raise PersonInvalid(f"Unknown or missing roles: {', '.join(unknown) or 'none given'}.")
    if session.get(Agency, agency_id) is None:
        raise PersonInvalid(f"There is no agency {agency_id}.")
    if session.get(Person, person_id) is not None or session.get(ApiClient, person_id) is not None:
        raise PersonInvalid(f"The id {person_id} is already taken by a person or an API client.")
    if password is not None:
        problems = password_problems(password, person_id=person_id, name=name)
        if problems:
            raise PersonInvalid("The password is not accepted: " + ", ".join(problems) + ".")
    now = utcnow()
    person = Person(
        id=person_id, agency_id=agency_id, name=name, roles=wanted,
        password_hash=hash_password(password) if password is not None else None,
        locale=locale, oidc_issuer=oidc_issuer, oidc_subject=oidc_subject, failed_attempts=0,
        disabled=False, created_at=now, password_changed_at=now if password is not None else None,
    )
    session.add(ApiClient(id=person_id, agency_id=agency_id, name=f"person: {name}"[:200], roles=wanted,
                          secret_hash=PERSON_SECRET_HASH, disabled=False, created_at=now))
    session.flush()
    session.add(person)
    session.flush()
    return person


def set_password(session: Session, person: Person, password: str) -> None:
    problems = password_problems(password, person_id=person.id, name=person.name)
    if problems:
        raise PersonInvalid("The password is not accepted: " + ", ".join(problems) + ".")
    person.password_hash = hash_password(password)
    person.password_changed_at = utcnow()
    person.failed_attempts = 0
    person.locked_until = None
    session.flush()


def set_disabled(session: Session, person: Person, disabled: bool) -> None:
    """Disable (or enable) the person and their client; a disabled person's sessions end at once."""
    person.disabled = disabled
    client = session.get(ApiClient, person.id)
    if client is not None:
        client.disabled = disabled
        client.disabled_at = utcnow() if disabled else None
    if disabled:
        for row in session.scalars(select(ConsoleSession).where(ConsoleSession.person_id == person.id)):
            session.delete(row)
    session.flush()


def check_password(session: Session, person_id: str, password: str, *, now: datetime) -> SignInOutcome:
    """Verify; count failures and lock after ``LOCK_AFTER`` of them. Unknown ids cost one hash too."""
    person = session.get(Person, person_id[:64]) if person_id else None
    if person is None or person.password_hash is None:
        _verify(_DUMMY_HASH, password)
        return SignInOutcome(None, "unknown" if person is None else "no-password")
    if person.disabled:
        _verify(_DUMMY_HASH, password)
        return SignInOutcome(None, "disabled")
    if person.locked_until is not None and person.locked_until > now:
        _verify(_DUMMY_HASH, password)
        return SignInOutcome(None, "locked")
    if not _verify(person.password_hash, password):
        person.failed_attempts += 1
        if person.failed_attempts >= LOCK_AFTER:
            person.locked_until = now + LOCK_FOR
            person.failed_attempts = 0
        session.flush()
        return SignInOutcome(None, "wrong-password")
    person.failed_attempts = 0
    person.locked_until = None
    if _hasher.check_needs_rehash(person.password_hash):
        person.password_hash = hash_password(password)
    session.flush()
    return SignInOutcome(person, "ok")


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password[:MAX_PASSWORD * 4])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_second_factor(person: Person) -> bool:
    return person.totp_sealed is not None or not SECOND_FACTOR_ROLES.isdisjoint(person.roles)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(person: Person, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=person.id, issuer_name="CaseBridge")


def seal_totp(keyring: Keyring, person_id: str, secret: str) -> str:
    entry = keyring.active(KeyKind.kek)
    sealed = aead.seal(_totp_key(entry.material), secret.encode(), person_id.encode())
    return f"{entry.id}${base64.urlsafe_b64encode(sealed).decode()}"


def open_totp(keyring: Keyring, person: Person) -> str | None:
    return None if person.totp_sealed is None else open_sealed_totp(keyring, person.id, person.totp_sealed)


def open_sealed_totp(keyring: Keyring, person_id: str, sealed: str) -> str | None:
    """A key sealed by ``seal_totp`` for this person (None when its keyring key is gone)."""
    key_id, _, text = sealed.partition("$")
    try:
        entry = keyring.get(key_id, KeyKind.kek)
    except KeyringError:
        return None
    return aead.open_sealed(_totp_key(entry.material), base64.urlsafe_b64decode(text), person_id.encode()).decode()


def _totp_key(material: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=TOTP_INFO).derive(material)


def check_totp(session: Session, person: Person, secret: str, code: str, *, now: datetime) -> bool:
    """The code for this 30-second step or a neighbour, never one already used (no replay)."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if totp.at(candidate * totp.interval) == code and (person.totp_last_step or -1) < candidate:
            person.totp_last_step = candidate
            session.flush()
            return True
    return False


def fingerprint(person_id: str) -> str:
    """A short, non-reversible tag for an attempted sign-in name in the application log."""
    return hashlib.sha256(person_id.encode()).hexdigest()[:12]
