"""Agreements a test loads must be signed before they decide anything: sign them as every party would."""

from __future__ import annotations

from app.agreements.signing import sign_for_every_party
from app.db import transaction
from app.state import AppState


def sign_all(state: AppState) -> int:
    """Sign every loaded version still proposed, for each party (or named signatory); the number of signatures."""
    with transaction(state.sessions) as session:
        return sign_for_every_party(session, state, "demo")
