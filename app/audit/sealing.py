"""The log's crypto, through app.crypto: sealed details and subject blind indexes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.audit.events import SUBJECT_DOMAIN
from app.crypto.aead import DecryptionError, open_sealed, seal
from app.crypto.envelope import BlindIndex
from app.crypto.keyring import KeyKind, Keyring, KeyringError


@dataclass(frozen=True, slots=True)
class SubjectIndex:
    digest: str
    key_id: str


class AuditSealer:
    """Seals details under the active audit key; opens them under whichever key sealed them."""

    def __init__(self, keyring: Keyring, blind_index: BlindIndex) -> None:
        self.keyring = keyring
        self.blind_index = blind_index

    def sealing_key(self) -> tuple[str, bytes]:
        """(id, material) of the active audit key."""
        entry = self.keyring.active(KeyKind.audit)
        return entry.id, entry.material

    @staticmethod
    def seal(material: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return seal(material, plaintext, aad)

    def open(self, key_id: str, sealed: bytes, aad: bytes) -> dict[str, Any]:
        """Decrypted details; DecryptionError for every failure (unknown key, tampering)."""
        try:
            material = self.keyring.get(key_id, KeyKind.audit).material
        except KeyringError:
            raise DecryptionError from None
        plaintext = open_sealed(material, sealed, aad)
        try:
            value = json.loads(plaintext)
        except ValueError:
            raise DecryptionError from None
        if not isinstance(value, dict):
            raise DecryptionError
        return value

    def subject_index(self, subject_id: str) -> SubjectIndex:
        """The subject's blind index under the active blind-index key."""
        key_id = self.blind_index.key_id
        return SubjectIndex(self.blind_index.digest(SUBJECT_DOMAIN, subject_id, key_id), key_id)

    def subject_indexes(self, subject_id: str) -> list[str]:
        """The subject's digest under EVERY blind-index key: old entries stay findable."""
        return [
            self.blind_index.digest(SUBJECT_DOMAIN, subject_id, entry.id)
            for entry in self.keyring.of_kind(KeyKind.blind_index)
        ]
