"""Re-assessment: a referral's risk, concerns, factors and intervention change as versions, each with
who, when and why (sealed); the current values are what the referral shows and agreements see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from support.audit_log import for_request
from support.referrals import COORDINATOR, PURPOSE, REFERRER

from app.referrals.models import Assessment, ReferralConcern
from app.state import AppState

Auth = Callable[..., dict[str, str]]
POLICE = "community-police-caseworker"
CHANGE = {"risk_level": "high", "intervention_type": "family_intervention",
          "concerns": ["threat_of_violence", "family_concern"],
          "reason": "Threats to a classmate reported by the school on 2 December."}


def reassess(app_client: TestClient, auth: Auth, rid: str, body: dict[str, Any], client_id: str = COORDINATOR,
             **headers: str) -> Any:
    return app_client.post(f"/v1/referrals/{rid}/assessments", json=body, headers=auth(client_id, **headers))


def history(app_client: TestClient, auth: Auth, rid: str, client_id: str = COORDINATOR,
            purpose: dict[str, str] = PURPOSE) -> Any:
    return app_client.get(f"/v1/referrals/{rid}/assessments", headers=auth(client_id, **purpose))


def test_a_reassessment_changes_the_referral_and_keeps_its_history(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any]
) -> None:
    created = post_referral()
    rid = created["id"]
    response = reassess(app_client, auth, rid, CHANGE, **PURPOSE)
    assert response.status_code == 200, response.text
    now = response.json()
    assert (now["risk_level"], now["intervention_type"]) == ("high", "family_intervention")
    assert now["concerns"] == ["threat_of_violence", "family_concern"]
    read = app_client.get(f"/v1/referrals/{rid}", headers=auth(REFERRER, **PURPOSE))
    assert read.json()["risk_level"] == "high" and read.headers["etag"] == response.headers["etag"]
    with state.sessions() as session:  # the concern index follows, so lists filter on the current ones
        assert set(session.scalars(select(ReferralConcern.concern).where(ReferralConcern.referral_id == rid))) == {
            "threat_of_violence", "family_concern"}
        stored = session.scalars(select(Assessment).where(Assessment.referral_id == rid)).one()
        assert stored.reason is not None and b"classmate" not in stored.reason  # sealed
    second = reassess(app_client, auth, rid, {"risk_level": "medium", "reason": "Support in place."},
                      client_id=REFERRER, **{"If-Match": read.headers["etag"]})
    assert second.status_code == 200, second.text
    listed = history(app_client, auth, rid)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["number"], i["by_agency"], i["risk_level"]) for i in items] == [
        (1, "city-municipality", "high"), (2, "school-north", "medium")]
    assert items[0]["reason"] == CHANGE["reason"] and items[1]["intervention_type"] == "family_intervention"
    entries = for_request(state, listed.headers["X-Request-ID"])
    assert [(e.event_type, e.details["fields"]) for e in entries] == [("disclosure", ["assessments"])]
    assert CHANGE["reason"] not in str([e.details for e in entries])  # the log names fields, never values
    undecided = reassess(app_client, auth, rid, {"intervention_type": None, "reason": "Plan to be agreed."})
    assert undecided.status_code == 200 and "intervention_type" not in {
        k for k, v in undecided.json().items() if v is not None}


def test_who_may_reassess_is_the_networks_protocol(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
    move: Callable[..., Any],
) -> None:
    rid = post_referral()["id"]
    refused = reassess(app_client, auth, rid, CHANGE, client_id="school-south-referrer")
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert [e.event_type for e in for_request(state, refused.headers["X-Request-ID"])] == ["denial"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-community-police"]}))
    # demo-city's protocol lets an assigned agency re-assess too (policies/networks/demo-city.yaml).
    assert reassess(app_client, auth, rid, {"urgency_ignored": 1, "reason": "x"}, client_id=POLICE).status_code == 422
    assert reassess(app_client, auth, rid, {"risk_level": "high", "reason": "Seen this week."},
                    client_id=POLICE).status_code == 200


def test_bad_input_changes_nothing(app_client: TestClient, auth: Auth, post_referral: Callable[..., Any]) -> None:
    created = post_referral()
    rid = created["id"]
    cases = [
        ({"reason": "nothing assessed"}, 422, "$"),
        ({"risk_level": "apocalyptic", "reason": "x"}, 422, "$.risk_level"),
        ({"concerns": ["hate_speech", "gossip"], "reason": "x"}, 422, "$.concerns[1]"),
        ({"concerns": [], "reason": "x"}, 422, None),
        ({"risk_level": "high"}, 422, None),  # no reason
        ({"risk_level": None, "reason": "x"}, 422, "$.risk_level"),
        ({"concerns": None, "reason": "x"}, 422, "$.concerns"),
        ({"protective_factors": None, "reason": "x"}, 422, "$.protective_factors"),
    ]
    for body, status, path in cases:
        response = reassess(app_client, auth, rid, body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        if path is not None:
            assert path in response.text, response.text
    stale = reassess(app_client, auth, rid, CHANGE, **{"If-Match": '"stale"'})
    assert stale.status_code == 412
    after = app_client.get(f"/v1/referrals/{rid}", headers=auth(REFERRER, **PURPOSE)).json()
    assert after == created  # nothing changed
    assert history(app_client, auth, rid).json()["items"] == []
    assert reassess(app_client, auth, "ref_doesnotexist", CHANGE).status_code == 404


def test_the_history_is_a_view_agreements_grant_or_withhold(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
    move: Callable[..., Any],
) -> None:
    rid = post_referral()["id"]
    move(rid, "triaged", "accepted", ("assigned", {"agencies": ["city-community-police"]}))
    assert reassess(app_client, auth, rid, CHANGE).status_code == 200
    # Police read the case (referral.police) but no view of theirs includes `assessments`.
    case = app_client.get(f"/v1/referrals/{rid}", headers=auth(POLICE, **{"X-Purpose": "intervention_planning"}))
    assert case.status_code == 200 and case.json()["risk_level"] == "high"
    withheld = history(app_client, auth, rid, client_id=POLICE, purpose={"X-Purpose": "intervention_planning"})
    assert withheld.status_code == 403, withheld.text
    assert "assessments" in withheld.json()["detail"]
    assert CHANGE["reason"] not in withheld.text
    assert [e.event_type for e in for_request(state, withheld.headers["X-Request-ID"])] == ["denial"]
    assert history(app_client, auth, rid, purpose={}).status_code == 400  # a purpose, as for any read
