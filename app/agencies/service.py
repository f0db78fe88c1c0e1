"""Rules for managing agencies and API clients (no HTTP here)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.agencies import repository
from app.agencies.models import Agency, ApiClient
from app.agencies.schemas import AgencyIn, ClientIn
from app.crypto.secrets import SecretHasher, new_client_secret
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class CreatedClient:
    client: ApiClient
    secret: str  # returned once to the operator, never stored


def add_agency(session: Session, data: AgencyIn) -> Agency:
    if repository.get_agency(session, data.id) is not None:
        raise Conflict(f"Agency {data.id!r} already exists.")
    agency = new_agency(data)
    session.add(agency)
    session.flush()
    return agency


def new_agency(data: AgencyIn) -> Agency:
    """The row for a new agency (unchecked, not added: `add_agency` checks; a seeder adds many at once)."""
    return Agency(id=data.id, name=data.name, sector=data.sector.value, created_at=utcnow())


def add_client(session: Session, data: ClientIn, *, hasher: SecretHasher) -> CreatedClient:
    if repository.get_agency(session, data.agency_id) is None:
        raise InvalidInput(
            f"Agency {data.agency_id!r} does not exist.",
            errors=[{"path": "$.agency_id", "message": "unknown agency"}],
        )
    client_id = data.id or f"{data.agency_id[:40]}-{secrets.token_hex(4)}"
    if repository.get_client(session, client_id) is not None:
        raise Conflict(f"Client {client_id!r} already exists.")
    created = new_client(client_id, data, hasher=hasher)
    session.add(created.client)
    session.flush()
    return created


def new_client(client_id: str, data: ClientIn, *, hasher: SecretHasher) -> CreatedClient:
    """The row for a new client and its one-time secret (unchecked, not added: `add_client` checks)."""
    secret = new_client_secret()
    client = ApiClient(
        id=client_id,
        agency_id=data.agency_id,
        name=data.name,
        roles=sorted({r.value for r in data.roles}),
        secret_hash=hasher.hash(client_id, secret),
        disabled=False,
        created_at=utcnow(),
    )
    return CreatedClient(client=client, secret=secret)


def reset_client_secret(session: Session, client_id: str, *, hasher: SecretHasher) -> str:
    client = _existing_client(session, client_id)
    secret = new_client_secret()
    client.secret_hash = hasher.hash(client.id, secret)
    session.flush()
    return secret


def disable_client(session: Session, client_id: str) -> ApiClient:
    client = _existing_client(session, client_id)
    if not client.disabled:
        client.disabled = True
        client.disabled_at = utcnow()
        session.flush()
    return client


def _existing_client(session: Session, client_id: str) -> ApiClient:
    client = repository.get_client(session, client_id)
    if client is None:
        raise NotFound(f"Client {client_id!r} does not exist.")
    return client
