"""Whom a published schema is spelled out for: a referrer asking with its token gets its own networks and codes."""

from __future__ import annotations

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials

from app.auth.principal import current_principal
from app.referrals.service import referable_networks
from app.standards.publish import ANYONE, Audience
from app.state import AppState
from app.vocabularies import mappings


def audience_for(request: Request, state: AppState, credentials: HTTPAuthorizationCredentials | None) -> Audience:
    """Anyone without a token; with one (verified: a bad token is a 401), the caller's agency as a referrer.

    Only an agency that may refer gets its networks and code systems named: they are exactly the
    values the API will take from it, so a body generated from its document is one it can post.
    """
    if credentials is None:
        return ANYONE
    principal = current_principal(request, state, credentials)
    if "referrer" not in principal.roles:
        return ANYONE
    networks = referable_networks(state.policies.current, principal.agency_id, state.clock().date())
    with state.read_sessions() as session:
        code_systems = mappings.of_agency(session, principal.agency_id)
    return Audience(networks=tuple(networks) or None, code_systems=code_systems)
