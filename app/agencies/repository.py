"""Queries for agencies and API clients."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.agencies.models import Agency, ApiClient


def get_agency(session: Session, agency_id: str) -> Agency | None:
    return session.get(Agency, agency_id)


def list_agencies(session: Session, after: str | None, limit: int) -> Sequence[Agency]:
    query = select(Agency).order_by(Agency.id).limit(limit)
    if after is not None:
        query = query.where(Agency.id > after)
    return session.scalars(query).all()


def get_client(session: Session, client_id: str) -> ApiClient | None:
    return session.get(ApiClient, client_id)


def list_clients(
    session: Session, after: str | None, limit: int, agency_id: str | None = None
) -> Sequence[ApiClient]:
    query = select(ApiClient).order_by(ApiClient.id).limit(limit)
    if after is not None:
        query = query.where(ApiClient.id > after)
    if agency_id is not None:
        query = query.where(ApiClient.agency_id == agency_id)
    return session.scalars(query).all()


# Built once: every authenticated request runs it.
_CLIENT_DISABLED = select(ApiClient.disabled).where(ApiClient.id == bindparam("client_id"))


def client_is_enabled(session: Session, client_id: str) -> bool:
    disabled = session.connection().execute(_CLIENT_DISABLED, {"client_id": client_id}).scalar()
    return disabled is False
