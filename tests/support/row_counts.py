"""Rows per table, to show a refused request changed nothing."""

from __future__ import annotations

from sqlalchemy import func, select, table

from app.state import AppState

# Tables a request could change; background jobs (checkpoints, leases) touch none of them.
TABLES = ("referrals", "referral_status_changes", "referral_assignments", "referral_concerns", "subjects",
          "subject_identifiers", "notes", "legal_holds", "code_mappings", "agencies", "api_clients",
          "idempotency_keys", "emergency_grants", "emergency_notices", "emergency_agency_flags",
          "partner_disclosures", "tombstones", "meetings", "meeting_items", "meeting_minutes",
          "case_actions", "clock_notices", "people", "console_sessions", "conduct_acceptances", "audit_entries",
          "training_records",
          "agreement_signatures")


def counts(state: AppState) -> dict[str, int]:
    """Rows per table, in one round trip."""
    query = select(*(select(func.count()).select_from(table(t)).scalar_subquery() for t in TABLES))
    with state.engine.connect() as conn:
        row = conn.execute(query).one()
    return dict(zip(TABLES, row, strict=True))
