"""Token endpoint, public keys, and the caller's own identity."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Form, Header, Request, Response
from pydantic import BaseModel

from app.auth import service
from app.auth.principal import CurrentPrincipal
from app.state import State

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


def client_address(request: Request) -> str:
    """The ASGI client host. Behind a reverse proxy that is the proxy's address unless uvicorn
    runs with ``--proxy-headers --forwarded-allow-ips=<proxy>`` (then X-Forwarded-For's)."""
    return request.client.host if request.client is not None else "unknown"


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
    summary="Issue an access token (client credentials)",
    description=(
        "OAuth 2.0 client-credentials grant (RFC 6749 §4.4): send `grant_type=client_credentials` with "
        "`client_id` and `client_secret` as form fields or HTTP Basic; `act` names the person the client "
        "acts for. The token is a short-lived ES256 JWT to send as `Authorization: Bearer`."
    ),
    response_model=TokenResponse,
    responses={400: {"description": "Invalid request"}, 401: {"description": "Invalid client"},
               429: {"description": "Too many failed token requests from this client or address; wait "
                                    "`Retry-After` seconds"}},
)
async def issue_token(
    request: Request,
    state: State,
    response: Response,
    grant_type: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    act: Annotated[str | None, Form(description="Person the client acts for.")] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    # async: the shape check and the rate limits run on the event loop, so a refused flood never
    # queues for (or occupies) a worker thread; only the lookup and the hash go to one.
    basic_id, basic_secret = _basic_credentials(authorization)
    asked = service.token_request(
        grant_type=grant_type,
        client_id=client_id or basic_id,
        client_secret=client_secret or basic_secret,
        act=act,
    )
    token, expires_in = await service.issue_token(state, asked, address=client_address(request))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenResponse(access_token=token, expires_in=expires_in)


@router.get("/.well-known/jwks.json", operation_id="get_jwks",
    summary="Token verification keys",
    description="The public keys (JWKS) that verify access tokens.",)
async def jwks(state: State) -> dict[str, Any]:
    return state.tokens.jwks()


@router.get("/v1/me", operation_id="get_me",
    summary="The calling client",
    description="Who the access token names: client, agency, sector, roles and the person acted for.",
    response_model=Me,
)
def me(principal: CurrentPrincipal) -> Me:
    return Me(
        client_id=principal.client_id,
        agency=principal.agency_id,
        sector=principal.sector,
        roles=sorted(principal.roles),
        act=principal.act,
    )
