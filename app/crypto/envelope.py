"""Per-subject data keys wrapped by the key-encryption key, and keyed blind indexes."""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass, field

from app.crypto.aead import DecryptionError, open_sealed, seal
from app.crypto.keyring import KeyKind, Keyring, KeyringError


@dataclass(frozen=True, slots=True)
class DataKey:
    """A subject's data key; the plaintext key never leaves this object's repr."""

    subject_id: str
    key: bytes = field(repr=False)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        return seal(self.key, plaintext, self._aad(context))

    def open(self, sealed: bytes, context: str) -> bytes:
        return open_sealed(self.key, sealed, self._aad(context))

    def _aad(self, context: str) -> bytes:
        return f"casebridge/v1|{self.subject_id}|{context}".encode()


@dataclass(frozen=True, slots=True)
class WrappedKey:
    kek_id: str
    wrapped: bytes


class Envelope:
    """Creates and unwraps subject data keys; rotation re-wraps under the active KEK."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def new_data_key(self, subject_id: str) -> tuple[DataKey, WrappedKey]:
        key = os.urandom(32)
        return DataKey(subject_id, key), self.wrap(subject_id, key)

    def wrap(self, subject_id: str, key: bytes) -> WrappedKey:
        kek = self.keyring.active(KeyKind.kek)
        return WrappedKey(kek.id, seal(kek.material, key, _wrap_aad(subject_id)))

    def unwrap(self, subject_id: str, wrapped: WrappedKey) -> DataKey:
        try:
            kek = self.keyring.get(wrapped.kek_id, KeyKind.kek)
        except KeyringError:
            raise DecryptionError from None
        return DataKey(subject_id, open_sealed(kek.material, wrapped.wrapped, _wrap_aad(subject_id)))


def _wrap_aad(subject_id: str) -> bytes:
    return f"casebridge/dek|{subject_id}".encode()


def normalise_identifier(value: str) -> str:
    """Case, width and spacing differences must not split one person into two."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "-./")


class BlindIndex:
    """Keyed HMAC-SHA256 digests: equality search without storing the value."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @property
    def key_id(self) -> str:
        return self.keyring.active(KeyKind.blind_index).id

    def digest(self, domain: str, value: str, key_id: str | None = None) -> str:
        entry = (
            self.keyring.get(key_id, KeyKind.blind_index)
            if key_id
            else self.keyring.active(KeyKind.blind_index)
        )
        message = f"{domain}\x00{value}".encode()
        return hmac.new(entry.material, message, hashlib.sha256).hexdigest()
