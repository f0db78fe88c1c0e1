"""Token endpoint, public keys, and the caller's own identity."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Form, Header, Response
from pydantic import BaseModel

from app.auth import service
from app.auth.principal import CurrentPrincipal
from app.state import DbSession, State

router = APIRouter(tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - OAuth token type name, not a secret
    expires_in: int


class Me(BaseModel):
    client_id: str
    agency: str
    sector: str
    roles: list[str]
    act: str | None


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization or not authorization.lower().startswith("basic "):
        return None, None
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, secret = raw.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else (None, None)


@router.post(
    "/v1/token",
    operation_id="issue_token",
    response_model=TokenResponse,
    summary="OAuth 2.0 client-credentials grant",
    responses={400: {"description": "Invalid request"}, 401: {"description": "Invalid client"}},
)
def issue_token(
    session: DbSession,
    state: State,
    response: Response,
    grant_type: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    act: Annotated[str | None, Form(description="Person the client acts for.")] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    basic_id, basic_secret = _basic_credentials(authorization)
    token, expires_in = service.issue_token(
        session,
        state,
        grant_type=grant_type,
        client_id=client_id or basic_id,
        client_secret=client_secret or basic_secret,
        act=act,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenResponse(access_token=token, expires_in=expires_in)


@router.get("/.well-known/jwks.json", operation_id="get_jwks", summary="Token verification keys")
def jwks(state: State) -> dict[str, Any]:
    return state.tokens.jwks()


@router.get("/v1/me", operation_id="get_me", response_model=Me, summary="The calling client")
def me(principal: CurrentPrincipal) -> Me:
    return Me(
        client_id=principal.client_id,
        agency=principal.agency_id,
        sector=principal.sector,
        roles=sorted(principal.roles),
        act=principal.act,
    )
