"""Client-credentials authentication (RFC 6749 §4.4), no HTTP here.

The token endpoint is a favourite target, so it is built to stay cheap under a flood:
the rate limits (app/auth/ratelimit.py) are checked first, on the event loop, before any
thread or database is touched; then one read-only lookup (no SQLite write lock) and one HMAC
(app/crypto/secrets.py) run on a worker thread. Unknown, wrong and disabled clients get the
same answer for the same work: a lookup and one HMAC each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from app.agencies import repository
from app.agencies.models import ApiClient
from app.errors import AppError
from app.state import AppState, unit_of_work

log = logging.getLogger("casebridge.auth")


class InvalidClient(AppError):
    status, slug, title = 401, "invalid-client", "Invalid client"


class OAuthInvalidRequest(AppError):
    status, slug, title = 400, "invalid-request", "Invalid token request"


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A well-formed client-credentials request (its shape checked, nothing else)."""

    client_id: str
    client_secret: str
    act: str | None

    def __repr__(self) -> str:  # never the secret, should one of these end up in a log
        return f"TokenRequest(client_id={self.client_id!r}, act={self.act!r})"


@dataclass(frozen=True, slots=True)
class _Authenticated:
    client_id: str
    agency_id: str
    sector: str
    roles: list[str]


def token_request(
    *, grant_type: str | None, client_id: str | None, client_secret: str | None, act: str | None
) -> TokenRequest:
    """Check the request's shape (400s): free, so it comes before the rate limits."""
    if grant_type != "client_credentials":
        raise OAuthInvalidRequest(
            "grant_type must be client_credentials.",
            error="unsupported_grant_type" if grant_type else "invalid_request",
        )
    if not client_id or not client_secret:
        raise OAuthInvalidRequest(
            "client_id and client_secret are required.", error="invalid_request"
        )
    if act is not None and not (0 < len(act) <= 128 and act.isprintable()):
        raise OAuthInvalidRequest("act must be 1 to 128 printable characters.", error="invalid_request")
    return TokenRequest(client_id=client_id, client_secret=client_secret, act=act)


async def issue_token(state: AppState, asked: TokenRequest, *, address: str) -> tuple[str, int]:
    """Rate-limit, authenticate and sign; returns the token and its lifetime in seconds.

    The attempt is charged to the client's and the address's buckets before any work (a 429
    costs nothing but this check) and given back once a token is issued, so only failures count.
    """
    charge = state.token_limits.charge(asked.client_id, address)
    client = await to_thread.run_sync(authenticate, state, asked)
    state.token_limits.refund(charge)
    return state.tokens.issue(
        client_id=client.client_id,
        agency_id=client.agency_id,
        sector=client.sector,
        roles=client.roles,
        act=asked.act,
    )


def authenticate(state: AppState, asked: TokenRequest) -> _Authenticated:
    """The client, if it exists, is enabled and the secret is its own; else ``InvalidClient``."""
    with state.read_sessions() as session:
        client = repository.get_client(session, asked.client_id[:64])
        # Hash on every path, so unknown, wrong and disabled cost the same and read the same.
        stored = client.secret_hash if client is not None else state.dummy_secret_hash
        client_id = client.id if client is not None else asked.client_id
        secret_ok = state.secret_hasher.verify(client_id, asked.client_secret, stored)
        if client is None or client.disabled or not secret_ok:
            raise InvalidClient(
                "Client authentication failed.",
                error="invalid_client",
                headers={"WWW-Authenticate": 'Basic realm="casebridge"'},
            )
        found = _Authenticated(client.id, client.agency_id, client.agency.sector, list(client.roles))
    if state.secret_hasher.needs_rehash(stored):
        _rehash(state, client_id, asked.client_secret, stored)
    return found


def _rehash(state: AppState, client_id: str, secret: str, old: str) -> None:
    """Replace a legacy scrypt hash (or one under a rotated pepper) now that the secret is known.

    Only if the row still holds the hash just verified: a secret reset meanwhile wins. A failure
    is not the caller's problem (their secret was right); the next success tries again.
    """
    fresh = state.secret_hasher.hash(client_id, secret)
    try:
        with unit_of_work(state) as session:
            session.execute(
                update(ApiClient)
                .where(ApiClient.id == client_id, ApiClient.secret_hash == old)
                .values(secret_hash=fresh)
            )
    except (SQLAlchemyError, AppError) as exc:
        log.warning("client secret rehash deferred", extra={"error_type": type(exc).__name__})
        return
    log.info("client secret rehashed", extra={"client_id": client_id})
