"""Client secrets: generated with enough entropy, stored only as a salted scrypt hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

DEFAULT_COST = 15  # log2(N); OWASP's floor for scrypt is 2^17 with r=8, raised as hardware allows
_R, _P = 8, 1


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, cost: int = DEFAULT_COST) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, cost, _R, _P)
    return f"scrypt${cost}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, cost, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(secret, _unb64(salt), int(cost), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, _unb64(digest))


def _scrypt(secret: str, salt: bytes, cost: int, r: int, p: int) -> bytes:
    n = 1 << cost
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
