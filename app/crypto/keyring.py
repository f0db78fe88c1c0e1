"""The keyring: every key the service holds, each with an id, a kind and one active per kind."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

KEYRING_FORMAT = 1


class KeyKind(StrEnum):
    token_signing = "token_signing"  # noqa: S105 - key kind name, not a secret; ES256 (ECDSA P-256) for access tokens
    kek = "kek"  # wraps per-subject data keys
    audit = "audit"  # AES-256-GCM for audit entry details
    blind_index = "blind_index"  # HMAC-SHA256 for blind indexes
    checkpoint_signing = "checkpoint_signing"  # Ed25519 for signed log checkpoints


_PREFIX = {
    KeyKind.token_signing: "tok",
    KeyKind.kek: "kek",
    KeyKind.audit: "aud",
    KeyKind.blind_index: "bix",
    KeyKind.checkpoint_signing: "ckp",
}


class KeyringError(RuntimeError):
    """The keyring cannot be read, is incomplete, or lacks the key asked for."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: str
    kind: KeyKind
    created: datetime
    active: bool
    material: bytes = field(repr=False)

    def public_info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "created": self.created.isoformat(),
            "active": self.active,
        }


def _new_material(kind: KeyKind) -> bytes:
    if kind is KeyKind.token_signing:
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    if kind is KeyKind.checkpoint_signing:
        return ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
    return secrets.token_bytes(32)


def new_key(kind: KeyKind, now: datetime | None = None) -> KeyEntry:
    now = now or datetime.now(UTC)
    kid = f"{_PREFIX[kind]}-{now:%Y%m%d}-{secrets.token_hex(4)}"
    return KeyEntry(id=kid, kind=kind, created=now, active=True, material=_new_material(kind))


class Keyring:
    """An immutable-per-read set of keys; rotation swaps in a new snapshot atomically."""

    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self._lock = threading.Lock()
        self._entries: tuple[KeyEntry, ...] = tuple(entries)
        self._check(self._entries)
        # Set by app.crypto.reload: re-read the keyring file when a key id is unknown here.
        self.reload_on_miss: Callable[[], bool] | None = None
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"Keyring({len(self._entries)} keys)"

    @staticmethod
    def _check(entries: tuple[KeyEntry, ...]) -> None:
        ids = [e.id for e in entries]
        if len(ids) != len(set(ids)):
            raise KeyringError("keyring has duplicate key ids")
        for kind in KeyKind:
            if sum(1 for e in entries if e.kind is kind and e.active) > 1:
                raise KeyringError(f"keyring has more than one active {kind.value} key")

    @classmethod
    def generate(cls) -> Keyring:
        return cls(new_key(kind) for kind in KeyKind)

    @property
    def entries(self) -> tuple[KeyEntry, ...]:
        return self._entries

    def missing_kinds(self) -> list[KeyKind]:
        return [k for k in KeyKind if not any(e.kind is k and e.active for e in self._entries)]

    def active(self, kind: KeyKind) -> KeyEntry:
        for entry in self._entries:
            if entry.kind is kind and entry.active:
                return entry
        raise KeyringError(f"no active {kind.value} key in the keyring")

    def get(self, key_id: str, kind: KeyKind | None = None) -> KeyEntry:
        for attempt in range(2):
            for entry in self._entries:
                if entry.id == key_id and (kind is None or entry.kind is kind):
                    return entry
            # Another process may have rotated: look at the keyring file once before giving up.
            if attempt or self.reload_on_miss is None or not self.reload_on_miss():
                break
        raise KeyringError("unknown key id")

    def of_kind(self, kind: KeyKind) -> list[KeyEntry]:
        return [e for e in self._entries if e.kind is kind]

    def add_missing(self) -> list[KeyEntry]:
        added = [new_key(kind) for kind in self.missing_kinds()]
        with self._lock:
            self._entries = self._entries + tuple(added)
        return added

    def replace(self, entries: Iterable[KeyEntry]) -> None:
        """Swap in a keyring re-read from its source (another process rotated a key)."""
        fresh = tuple(entries)
        self._check(fresh)
        with self._lock:
            self._entries = fresh
        self._changed()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every rotation or reload (e.g. to re-parse token keys)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def rotate(self, kind: KeyKind) -> KeyEntry:
        """Add a new active key of a kind; older keys stay for reading and verifying."""
        fresh = new_key(kind)
        with self._lock:
            kept = tuple(replace(e, active=False) if e.kind is kind else e for e in self._entries)
            entries = kept + (fresh,)
            self._check(entries)
            self._entries = entries
        self._changed()
        return fresh

    # -- persistence -------------------------------------------------------------------

    def to_json(self) -> str:
        doc = {
            "format": KEYRING_FORMAT,
            "keys": [
                {**e.public_info(), "material": base64.b64encode(e.material).decode()}
                for e in self._entries
            ],
        }
        return json.dumps(doc, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            doc = json.loads(text)
            if doc.get("format") != KEYRING_FORMAT:
                raise KeyringError("unsupported keyring format")
            entries = [
                KeyEntry(
                    id=str(k["id"]),
                    kind=KeyKind(k["kind"]),
                    created=datetime.fromisoformat(k["created"]),
                    active=bool(k["active"]),
                    material=base64.b64decode(k["material"], validate=True),
                )
                for k in doc["keys"]
            ]
        except KeyringError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            # Never include the text: it is key material.
            raise KeyringError(f"keyring is malformed ({type(exc).__name__})") from None
        return cls(entries)

    def save(self, path: Path) -> None:
        """Write atomically with mode 0600: a crash never leaves half a keyring."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(self.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            text = path.read_text()
        except OSError as exc:
            hint = ""
            if isinstance(exc, PermissionError):
                uid, gid = os.geteuid(), os.getegid()
                hint = (f"; this process runs as uid {uid} gid {gid}: make the file owned by uid {uid} (mode 0600),"
                        f" or mode 0640 with a group of this process (a secret mounted with uid/gid/mode,"
                        f" or `docker run --group-add <the file's gid>`); see docs/deploy.md")
            raise KeyringError(f"cannot read keyring at {path}: {exc.strerror}{hint}") from None
        return cls.from_json(text)


def file_is_private(path: Path) -> bool:
    """Nobody else may read it: no bits for others, and the group may only read, and only a group of this process.

    Group-readable (0640) is how a secret owned by root reaches a service that does not run as root
    (a Kubernetes fsGroup, a Docker secret with gid, `--group-add`).
    """
    info = path.stat()
    if info.st_mode & stat.S_IRWXO or info.st_mode & (stat.S_IWGRP | stat.S_IXGRP):
        return False
    return not info.st_mode & stat.S_IRGRP or info.st_gid in {os.getegid(), *os.getgroups()}


def not_private(path: Path) -> str:
    """Why a keyring file that fails file_is_private is refused, and what to do."""
    return f"keyring {path} is open to others; chmod 600 it (or 640 with a group of the service: see docs/deploy.md)"


def open_keyring(
    *, path: Path, inline_json: str | None, create_if_missing: bool, strict: bool
) -> tuple[Keyring, list[str]]:
    """Load the keyring (creating it on first run in dev); returns it and notices to log.

    strict (prod): the keyring must exist, be complete, and not be readable by others.
    """
    notices: list[str] = []
    if inline_json is not None:
        keyring = Keyring.from_json(inline_json)
    elif path.exists():
        if not file_is_private(path):
            if strict:
                raise KeyringError(not_private(path))
            os.chmod(path, 0o600)
            notices.append(f"keyring {path} was readable by others; permissions set to 0600")
        keyring = Keyring.load(path)
    elif create_if_missing:
        keyring = Keyring.generate()
        keyring.save(path)
        notices.append(f"created keyring {path} ({len(keyring.entries)} keys)")
        return keyring, notices
    else:
        raise KeyringError(f"keyring not found at {path}")
    missing = keyring.missing_kinds()
    if missing:
        if strict or inline_json is not None:
            names = ", ".join(k.value for k in missing)
            raise KeyringError(f"keyring has no active key of kind(s): {names}")
        keyring.add_missing()
        keyring.save(path)
        notices.append("added missing key kinds: " + ", ".join(k.value for k in missing))
    return keyring, notices
