"""Who is calling: a typed dependency built from a verified access token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from app.agencies.repository import client_is_enabled
from app.agencies.schemas import Role
from app.auth.tokens import InvalidToken
from app.errors import Forbidden, Unauthorized
from app.state import AppState, State
from app.training.held import acting_person, held, held_on


class ClientCredentialsBearer(SecurityBase):
    """A bearer token, documented as OAuth 2.0 client credentials with its token URL.

    The document says where a token comes from, so Swagger UI's "Authorize" can fetch one from
    ``POST /v1/token``; at runtime this only reads the ``Authorization`` header and never refuses:
    ``_from_token`` decides, with one problem response for every way a token is missing or bad.
    """

    def __init__(self, token_url: str, description: str) -> None:
        flows = OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl=token_url, scopes={}))
        self.model = OAuth2Model(flows=flows, description=description)
        self.scheme_name = "OAuth2"

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials | None:
        scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
        if not scheme or not credentials:
            return None
        return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


bearer = ClientCredentialsBearer(
    "/v1/token",
    "OAuth 2.0 client credentials: POST your client_id and client_secret to /v1/token (form fields or HTTP "
    "Basic), then send `Authorization: Bearer <access_token>`.",
)
# The roles each require_roles dependency admits, so the OpenAPI document can state them (app.openapi).
ROLE_CHECKS: dict[Callable[..., Principal], frozenset[str]] = {}


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    agency_id: str
    sector: str
    roles: frozenset[str]
    act: str | None  # the person the client acts for, when given at token request
    token_id: str
    # The courses required by the policy in force that the acting person holds today (app.training).
    trained: frozenset[str] = frozenset()

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


def _confirm_enabled(session: Session, principal: Principal, state: AppState) -> Principal:
    # Every request, not cached: disabling a client takes effect on its next call, and a course
    # recorded or expired counts from the next one.
    if not client_is_enabled(session, principal.client_id):
        raise Unauthorized("The access token is invalid or expired.")
    required = state.policies.current.index.required_courses
    if not required:  # no agreement in force requires training: nothing to load
        return principal
    person = acting_person(principal.client_id, principal.act)
    return replace(principal, trained=held(session, person, principal.agency_id, required, state.clock().date()))


def current_principal(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    principal = _from_token(request, state, credentials)
    # A unit of work of its own, ended here: no connection is held while the request waits
    # for a thread to run its handler.
    with state.read_sessions() as session:
        return _confirm_enabled(session, principal, state)


@dataclass(frozen=True, slots=True)
class TokenCaller:
    """A caller whose token verified but whose client is not yet known to be enabled.

    ``confirm`` is the only way from here to a Principal: the hot read paths call it first
    thing in their worker thread, in their own transaction, which saves the thread hop a
    separate database dependency costs.
    """

    _principal: Principal
    _state: AppState

    def confirm(self, session: Session) -> Principal:
        return _confirm_enabled(session, self._principal, self._state)

    @property
    def client_id(self) -> str:
        return self._principal.client_id

    def confirmed_by(self, read: ClientStanding, connection: Any, dialect: Dialect) -> Principal:
        """The principal, once a read that looked up this client in its own statement found it enabled.

        Its training, when the policy in force requires any, is read on the same connection.
        """
        if read.client_id != self._principal.client_id or not read.client_enabled:
            raise Unauthorized("The access token is invalid or expired.")
        required = self._state.policies.current.index.required_courses
        if not required:
            return self._principal
        principal = self._principal
        person = acting_person(principal.client_id, principal.act)
        return replace(principal, trained=held_on(
            connection, dialect, person, principal.agency_id, required, self._state.clock().date()))


class ClientStanding(Protocol):
    """What a read that folds in the client check reports (app.referrals.snapshot.CallerRead)."""

    @property
    def client_id(self) -> str: ...

    @property
    def client_enabled(self) -> bool: ...


async def token_caller(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> TokenCaller:
    # On the event loop: verifying an ES256 signature costs less than a hop to a thread.
    return TokenCaller(_from_token(request, state, credentials), state)


async def caller_of(request: Request, state: AppState) -> TokenCaller:
    """``Caller`` for a lean entry (app.lean), which solves no dependencies: the same checks."""
    return await token_caller(request, state, await bearer(request))


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

    ROLE_CHECKS[_check] = wanted
    return _check


AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.admin))]
