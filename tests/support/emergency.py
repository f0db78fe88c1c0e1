"""Emergency access in tests: asking, reviewing, and the case an assigned agency may break the glass on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

Auth = Callable[..., dict[str, str]]

REASON = "Threat to life reported by police; need contact context now."
OTHER_REASON = "Pupil texted a friend that she intends to harm herself tonight."
EMERGENCY = {"X-Purpose": "emergency"}
HEALTH = "health-centre-caseworker"  # city-health-centre: assigned to the case below
SOUTH = "school-south-referrer"  # school-south: no relation to any school-north referral
OWNER = "school-north-referrer"
AUDITOR = "independent-auditor"


def ask(app_client: TestClient, auth: Auth, rid: str, client_id: str, reason: str | None = REASON) -> Response:
    body = {} if reason is None else {"reason": reason}
    return app_client.post(f"/v1/referrals/{rid}/emergency-access", json=body, headers=auth(client_id))


def review(
    app_client: TestClient, auth: Auth, grant_id: str, finding: str, note: str | None = None,
    client_id: str = AUDITOR,
) -> Response:
    body: dict[str, Any] = {"finding": finding}
    if note is not None:
        body["note"] = note
    return app_client.post(f"/v1/audit/emergency-access/{grant_id}/review", json=body, headers=auth(client_id))


def withdraw_consent(app_client: TestClient, auth: Auth, rid: str) -> None:
    response = app_client.post(f"/v1/referrals/{rid}/consent", headers=auth(OWNER),
                               json={"status": "withdrawn", "legal_basis": "public_task"})
    assert response.status_code == 200, response.text


def slug(response: Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]
