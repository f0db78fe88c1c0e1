"""Client secrets: generated with 256 bits of entropy, stored only as a keyed hash (HMAC-SHA256).

Why not a slow KDF: scrypt and friends exist to make guessing a *low-entropy* password
expensive. A client secret is ``secrets.token_urlsafe(32)`` — 256 random bits no one can
guess — so the slowness bought nothing and cost ~100 ms of CPU per token request, which a
handful of wrong-secret requests turned into a stall of the whole service (issue 12).

The stored form is ``hmac-sha256$<key id>$<digest>``: HMAC-SHA256 over the client id and the
secret, under a *pepper* derived with HKDF from a ``blind_index`` key of the keyring (info
label :data:`PEPPER_INFO`). A stolen database alone therefore verifies nothing, and a hash
copied onto another client's row does not verify (the client id is in the message).

Rotation: the hash names the blind-index key its pepper came from. ``casebridge keys rotate
blind_index`` keeps the old key in the keyring (inactive), so every stored hash keeps
verifying; the next successful token request of each client rehashes its secret under the
active key (``needs_rehash``). Do not remove an old blind-index key from the keyring while
a client may still hold a hash under it (``casebridge client list`` shows no hashes; reset
the secret of a client that never came back).

Legacy: databases created before this change hold ``scrypt$…`` hashes. They still verify
(at their stored cost, which is the slow path), and are rehashed to HMAC on the client's next
successful token request. Until then a wrong attempt against such a client costs one scrypt,
which the token endpoint's rate limits bound (app/auth/ratelimit.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.crypto.keyring import KeyKind, Keyring, KeyringError

SCHEME = "hmac-sha256"
# Domain separation: the same blind-index key material also keys the blind indexes.
PEPPER_INFO = b"casebridge/client-secret-pepper/v1"
LEGACY_SCHEME = "scrypt"
LEGACY_MAX_COST = 20  # the largest cost `secret_hash_cost` ever allowed; anything above is not ours
_R, _P = 8, 1


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


class SecretHasher:
    """Hashes and verifies client secrets under the keyring's pepper; verification costs the same
    whatever the outcome (one HMAC), except against a legacy scrypt hash."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._peppers: dict[str, bytes] = {}  # key id -> pepper; a key id's material never changes

    def hash(self, client_id: str, secret: str) -> str:
        key_id, pepper = self._active_pepper()
        return f"{SCHEME}${key_id}${_b64(_mac(pepper, client_id, secret))}"

    def verify(self, client_id: str, secret: str, stored: str) -> bool:
        """True when `secret` is the one `stored` was made from, for this client."""
        scheme, _, rest = stored.partition("$")
        if scheme == LEGACY_SCHEME:
            return verify_legacy_scrypt(secret, stored)
        key_id, _, digest = rest.partition("$")
        pepper = self._pepper_of(key_id) if scheme == SCHEME else None
        # An unknown scheme or key still costs one HMAC (under the active pepper), then fails.
        actual = _mac(pepper or self._active_pepper()[1], client_id, secret)
        try:
            expected = _unb64(digest)
        except ValueError:
            return False
        return pepper is not None and hmac.compare_digest(actual, expected)

    def needs_rehash(self, stored: str) -> bool:
        """A legacy scrypt hash, or one under a blind-index key that is no longer active."""
        scheme, _, rest = stored.partition("$")
        return scheme != SCHEME or rest.partition("$")[0] != self._active_pepper()[0]

    def dummy_hash(self) -> str:
        """A hash no request can match: checked when the client id is unknown, so a miss costs
        what a hit costs."""
        return self.hash("\x00no-such-client", new_client_secret())

    def _active_pepper(self) -> tuple[str, bytes]:
        entry = self.keyring.active(KeyKind.blind_index)
        return entry.id, self._derive(entry.id, entry.material)

    def _pepper_of(self, key_id: str) -> bytes | None:
        if key_id in self._peppers:
            return self._peppers[key_id]
        try:
            entry = self.keyring.get(key_id, KeyKind.blind_index)
        except KeyringError:
            return None
        return self._derive(entry.id, entry.material)

    def _derive(self, key_id: str, material: bytes) -> bytes:
        pepper = self._peppers.get(key_id)
        if pepper is None:
            pepper = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PEPPER_INFO).derive(material)
            self._peppers[key_id] = pepper
        return pepper


def _mac(pepper: bytes, client_id: str, secret: str) -> bytes:
    message = b"client-secret\x00" + client_id.encode() + b"\x00" + secret.encode()
    return hmac.new(pepper, message, hashlib.sha256).digest()


# -- legacy scrypt hashes (before issue 12) -------------------------------------------------


def legacy_scrypt_hash(secret: str, cost: int) -> str:
    """The pre-HMAC stored form, ``scrypt$cost$r$p$salt$digest``: what older databases hold.

    Nothing in the service makes new ones; it is the reference for what
    :func:`verify_legacy_scrypt` parses (and lets tests build an "old" database).
    """
    salt = secrets.token_bytes(16)
    return f"{LEGACY_SCHEME}${cost}${_R}${_P}${_b64(salt)}${_b64(_scrypt(secret, salt, cost, _R, _P))}"


def verify_legacy_scrypt(secret: str, stored: str) -> bool:
    try:
        scheme, cost, r, p, salt, digest = stored.split("$")
        if scheme != LEGACY_SCHEME or not (1 <= int(cost) <= LEGACY_MAX_COST and 0 < int(r) <= 16 and 0 < int(p) <= 4):
            return False  # not a hash this service ever wrote: refuse rather than burn memory
        actual = _scrypt(secret, _unb64(salt), int(cost), int(r), int(p))
        return hmac.compare_digest(actual, _unb64(digest))
    except (ValueError, TypeError, OverflowError, MemoryError):
        return False


def _scrypt(secret: str, salt: bytes, cost: int, r: int, p: int) -> bytes:
    n = 1 << cost
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
