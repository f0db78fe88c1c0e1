"""Who is calling: a typed dependency built from a verified access token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.agencies.repository import client_is_enabled
from app.agencies.schemas import Role
from app.auth.tokens import InvalidToken
from app.errors import Forbidden, Unauthorized
from app.state import DbSession, State

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


def current_principal(
    request: Request,
    state: State,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer access token is required.")
    try:
        claims = state.tokens.verify(credentials.credentials)
    except InvalidToken:
        raise Unauthorized("The access token is invalid or expired.") from None
    if not client_is_enabled(session, claims.client_id):
        raise Unauthorized("The access token is invalid or expired.")
    principal = Principal(
        client_id=claims.client_id,
        agency_id=claims.agency_id,
        sector=claims.sector,
        roles=claims.roles,
        act=claims.act,
        token_id=claims.jti,
    )
    request.state.client_id = principal.client_id
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


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
