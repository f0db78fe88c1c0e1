"""Read the disclosure log in tests: every entry with its decrypted details."""

from __future__ import annotations

from app.audit import queries
from app.audit.queries import EntryFilter, EntryView
from app.state import AppState


def entries(state: AppState, **filters: str) -> list[EntryView]:
    with state.engine.connect() as conn:
        return queries.search(conn, state.audit.sealer, EntryFilter(**filters), after=None, limit=100_000)  # type: ignore[arg-type]


def for_request(state: AppState, request_id: str) -> list[EntryView]:
    return [e for e in entries(state) if (e.details or {}).get("request_id") == request_id]
