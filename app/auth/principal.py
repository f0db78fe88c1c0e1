"""Who is calling: a typed dependency built from a verified access token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.agencies.repository import client_is_enabled
from app.agencies.schemas import Role
from app.auth.tokens import InvalidToken
from app.errors import Forbidden, Unauthorized
from app.state import AppState, State

bearer = HTTPBearer(auto_error=False, description="Access token from POST /v1/token")


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    agency_id: str
    sector: str
    roles: frozenset[str]
    act: str | None  # the person the client acts for, when given at token request
    token_id: str

    def has(self, role: Role) -> bool:
        return role.value in self.roles


def _from_token(
    request: Request, state: AppState, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller its bearer token names (signature, expiry, issuer and audience checked)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer access token is required.")
    try:
        claims = state.tokens.verify(credentials.credentials)
    except InvalidToken:
        raise Unauthorized("The access token is invalid or expired.") from None
    principal = Principal(
        client_id=claims.client_id,
        agency_id=claims.agency_id,
        sector=claims.sector,
        roles=claims.roles,
        act=claims.act,
        token_id=claims.jti,
    )
    request.state.client_id = principal.client_id
    request.state.principal = principal  # for the denial entry of any refusal (app.errors)
    return principal


def _confirm_enabled(session: Session, principal: Principal) -> Principal:
    # Every request, not cached: disabling a client takes effect on its next call.
    if not client_is_enabled(session, principal.client_id):
        raise Unauthorized("The access token is invalid or expired.")
    return principal


def current_principal(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    principal = _from_token(request, state, credentials)
    # A unit of work of its own, ended here: no connection is held while the request waits
    # for a thread to run its handler.
    with state.read_sessions() as session:
        return _confirm_enabled(session, principal)


@dataclass(frozen=True, slots=True)
class TokenCaller:
    """A caller whose token verified but whose client is not yet known to be enabled.

    ``confirm`` is the only way from here to a Principal: the hot read paths call it first
    thing in their worker thread, in their own transaction, which saves the thread hop a
    separate database dependency costs.
    """

    _principal: Principal

    def confirm(self, session: Session) -> Principal:
        return _confirm_enabled(session, self._principal)


async def token_caller(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> TokenCaller:
    # On the event loop: verifying an ES256 signature costs less than a hop to a thread.
    return TokenCaller(_from_token(request, state, credentials))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Caller = Annotated[TokenCaller, Depends(token_caller)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting callers holding any of the roles."""
    wanted = frozenset(r.value for r in roles)

    def _check(principal: CurrentPrincipal) -> Principal:
        if principal.roles.isdisjoint(wanted):
            names = ", ".join(sorted(wanted))
            raise Forbidden(f"This operation needs one of the roles: {names}.")
        return principal

    return _check


AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.admin))]
