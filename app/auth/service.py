"""Client-credentials authentication (RFC 6749 §4.4), no HTTP here."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.agencies import repository
from app.crypto.secrets import verify_secret
from app.errors import AppError
from app.state import AppState


class InvalidClient(AppError):
    status, slug, title = 401, "invalid-client", "Invalid client"


class OAuthInvalidRequest(AppError):
    status, slug, title = 400, "invalid-request", "Invalid token request"


def issue_token(
    session: Session,
    state: AppState,
    *,
    grant_type: str | None,
    client_id: str | None,
    client_secret: str | None,
    act: str | None,
) -> tuple[str, int]:
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
    client = repository.get_client(session, client_id[:64])
    # Hash on every path, so unknown, wrong and disabled cost the same and read the same.
    stored = client.secret_hash if client is not None else state.dummy_secret_hash
    secret_ok = verify_secret(client_secret, stored)
    if client is None or client.disabled or not secret_ok:
        raise InvalidClient(
            "Client authentication failed.",
            error="invalid_client",
            headers={"WWW-Authenticate": 'Basic realm="casebridge"'},
        )
    return state.tokens.issue(
        client_id=client.id,
        agency_id=client.agency_id,
        sector=client.agency.sector,
        roles=list(client.roles),
        act=act,
    )
