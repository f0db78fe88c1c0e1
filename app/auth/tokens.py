"""Issue and verify ES256 access tokens (JWT) with keys from the keyring."""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from app.crypto.keyring import KeyKind, Keyring

ALGORITHM = "ES256"
VERIFIED_KEPT = 4096
"""Verified tokens remembered at most (a partner's token is presented on every call of its sync)."""


class InvalidToken(Exception):
    """The token cannot be trusted; the reason is for logs, never for the caller."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    client_id: str
    agency_id: str
    sector: str
    roles: frozenset[str]
    act: str | None
    jti: str
    expires_at: datetime


class TokenService:
    """Signs with the active token key; verifies against every token key still held."""

    def __init__(self, keyring: Keyring, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self._signing: tuple[str, Key] | None = None
        self._verifying: dict[str, Key] = {}
        # Tokens whose signature and claims verified, by the SHA-256 of the token, until they expire:
        # the ES256 check (0.1-0.4 ms of CPU by machine) once per token, not per request.  Emptied whenever
        # the keyring changes, so a withdrawn key's tokens are checked, and refused, again.
        self._verified: dict[bytes, TokenClaims] = {}
        self._verified_lock = threading.Lock()
        self._generation = 0  # of the keys: a verdict reached under older keys is not remembered
        self.refresh_keys()

    def refresh_keys(self) -> None:
        """Re-read the keyring after a rotation; parsed keys are cached, and verified tokens forgotten."""
        verifying: dict[str, Key] = {}
        for entry in self.keyring.of_kind(KeyKind.token_signing):
            private = serialization.load_pem_private_key(entry.material, password=None)
            public_pem = private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            verifying[entry.id] = jwk.construct(public_pem, ALGORITHM)
            if entry.active:
                self._signing = (entry.id, jwk.construct(entry.material, ALGORITHM))
        with self._verified_lock:
            self._verifying = verifying
            self._verified = {}
            self._generation += 1

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in sorted(self._verifying.items()):
            public = key.to_dict()
            public.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
            public.pop("d", None)
            keys.append(public)
        return {"keys": keys}

    def issue(
        self,
        *,
        client_id: str,
        agency_id: str,
        sector: str,
        roles: list[str],
        act: str | None,
        now: datetime | None = None,
    ) -> tuple[str, int]:
        if self._signing is None:
            raise InvalidToken("no active signing key")
        kid, key = self._signing
        issued = int((now or datetime.now(UTC)).timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "agency": agency_id,
            "sector": sector,
            "roles": sorted(roles),
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_seconds,
            "jti": secrets.token_urlsafe(16),
        }
        if act:
            claims["act"] = {"sub": act}  # RFC 8693 actor claim
        token = jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})
        return token, self.ttl_seconds

    def verify(self, token: str) -> TokenClaims:
        """The token's claims, if its signature, issuer, audience and times hold."""
        digest = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(digest)
        if known is not None:
            if datetime.now(UTC) < known.expires_at:
                return known
            with self._verified_lock:
                self._verified.pop(digest, None)
            raise InvalidToken("signature or claims rejected")  # expired: what jwt.decode says of it
        generation = self._generation
        claims = self._verify_signed(token)
        with self._verified_lock:
            if generation != self._generation:  # the keys changed meanwhile
                return claims
            if len(self._verified) >= VERIFIED_KEPT:
                self._forget_expired()
            if len(self._verified) < VERIFIED_KEPT:
                self._verified[digest] = claims
        return claims

    def _forget_expired(self) -> None:
        """Called with the lock held, when full: drop the expired; if none expired, drop the oldest half."""
        now = datetime.now(UTC)
        kept = {d: c for d, c in self._verified.items() if c.expires_at > now}
        if len(kept) >= VERIFIED_KEPT:
            kept = dict(list(kept.items())[VERIFIED_KEPT // 2 :])
        self._verified = kept

    def _verify_signed(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise InvalidToken("malformed header") from None
        # Pin the algorithm before looking at anything else: no "none", no HS256 confusion.
        if header.get("alg") != ALGORITHM or header.get("typ", "JWT") != "JWT":
            raise InvalidToken("algorithm not allowed")
        key = self._verifying.get(str(header.get("kid")))
        reload = self.keyring.reload_on_miss
        if key is None and reload is not None and reload():  # a key rotated by another process
            key = self._verifying.get(str(header.get("kid")))
        if key is None:
            raise InvalidToken("unknown kid")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_iss": True,
                    "require_aud": True,
                    "require_sub": True,
                    "require_jti": True,
                    "verify_nbf": True,
                    "leeway": 0,
                },
            )
        except JOSEError:
            raise InvalidToken("signature or claims rejected") from None
        try:
            roles = claims["roles"]
            act = claims.get("act")
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise TypeError
            act_sub = act.get("sub") if isinstance(act, dict) else None
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("claims incomplete") from None
        # RFC 7519 4.1.4: valid only before `exp`. (python-jose compares whole seconds and accepts a
        # token during its last second; the remembered tokens are refused from `exp` on, so is this.)
        if expires_at <= datetime.now(UTC):
            raise InvalidToken("signature or claims rejected")
        try:
            return TokenClaims(
                client_id=str(claims["sub"]),
                agency_id=str(claims["agency"]),
                sector=str(claims["sector"]),
                roles=frozenset(roles),
                act=str(act_sub) if act_sub is not None else None,
                jti=str(claims["jti"]),
                expires_at=expires_at,
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("claims incomplete") from None
