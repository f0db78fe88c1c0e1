"""0008: findings written as free text before it are sealed, coded, and revoked when they said so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text
from support.emergency import AUDITOR, HEALTH, OWNER, Auth, ask

from app import migrate
from app.state import AppState

UNJUSTIFIED = "UNJUSTIFIED - revoke, no threat in the police file on Yasmin"
UNCLEAR = "Looked at it: the police file on Yasmin mentions a knife"


def test_0008_seals_legacy_findings_and_its_downgrade_opens_them(
    app_client: TestClient, auth: Auth, state: AppState, assigned_case: Callable[..., str]
) -> None:
    rid = assigned_case()
    revoked = ask(app_client, auth, rid, HEALTH).json()["id"]
    requeued = ask(app_client, auth, rid, OWNER).json()["id"]
    coded = ask(app_client, auth, rid, "municipality-coordinator").json()["id"]
    reviewed_at = state.clock() - timedelta(minutes=5)
    engine, keyring = state.engine, state.keyring

    migrate.downgrade(engine, "0007", keyring=keyring)
    with engine.begin() as conn:
        for grant_id, finding in ((revoked, UNJUSTIFIED), (requeued, UNCLEAR), (coded, "justified")):
            conn.execute(text("UPDATE emergency_grants SET finding = :f, reviewed_at = :at, reviewed_by = :by "
                              "WHERE id = :id"), {"f": finding, "at": reviewed_at, "by": AUDITOR, "id": grant_id})
    migrate.upgrade(engine, keyring=keyring)

    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text(
            "SELECT id, finding, finding_note, reviewed_at, revoked_at, revoked_by FROM emergency_grants"))}
        flags = conn.execute(text("SELECT agency_id, network_id, grant_id FROM emergency_agency_flags")).all()
    assert all(b"Yasmin" not in bytes(r.finding_note or b"") for r in rows.values())
    assert rows[revoked].finding == "unjustified" and rows[revoked].revoked_by == AUDITOR
    assert rows[revoked].revoked_at is not None
    assert rows[requeued].finding is None and rows[requeued].reviewed_at is None  # back in the queue
    assert rows[coded].finding == "justified" and rows[coded].finding_note is None
    assert [tuple(f) for f in flags] == [("city-health-centre", "demo-city", revoked)]

    # The service opens the sealed notes: the migration sealed them as it does.
    listed = {g["id"]: g for g in app_client.get("/v1/audit/emergency-access", headers=auth(AUDITOR)).json()["items"]}
    assert listed[revoked]["finding_note"] == UNJUSTIFIED and listed[revoked]["active"] is False
    assert listed[requeued]["finding_note"] == UNCLEAR and listed[requeued]["reviewed_at"] is None
    pending = app_client.get("/v1/audit/emergency-access", params={"reviewed": "false"}, headers=auth(AUDITOR))
    assert [g["id"] for g in pending.json()["items"]] == [requeued]

    migrate.downgrade(engine, "0007", keyring=keyring)
    with engine.connect() as conn:
        findings = dict(conn.execute(text("SELECT id, finding FROM emergency_grants")).all())
    assert findings == {revoked: f"unjustified: {UNJUSTIFIED}", requeued: UNCLEAR, coded: "justified"}
    migrate.upgrade(engine, keyring=keyring)
