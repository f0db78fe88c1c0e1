"""AES-256-GCM sealing with a version prefix and the row's identity as associated data."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """One opaque error for every failure: wrong key, wrong row, tampered bytes."""

    def __init__(self) -> None:
        super().__init__("ciphertext cannot be opened")


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != VERSION:
        raise DecryptionError
    nonce = sealed[1 : 1 + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[1 + NONCE_BYTES :], associated_data)
    except (InvalidTag, ValueError):
        raise DecryptionError from None
