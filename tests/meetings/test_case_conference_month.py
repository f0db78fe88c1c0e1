"""A month of a network (and the review six months on), played through the API on both databases.

Three referrals are triaged; a meeting is scheduled and held with different agencies invited per
item, each reading only what its agreements grant for `case_conference` (checked field by field
against the views as policies/demo-city.yaml writes them); actions are set and completed, one
runs overdue and rolls onto the next agenda; a case is closed and its 6-month review is raised by
the clock; a repeat referral is flagged onto the next agenda.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from support.audit_log import for_request
from support.referrals import COORDINATOR, referral_body
from support.retention import START, Clock

from app.meetings import clocks
from app.state import AppState

Auth = Callable[..., dict[str, str]]
CONFERENCE = {"X-Purpose": "case_conference"}
PLANNING = {"X-Purpose": "intervention_planning"}
# The views of policies/demo-city.yaml, written out here by hand (not read from the service).
SUMMARY = {"id", "subject.age_band", "subject.district", "concerns", "requested_services", "status"}
CASE = SUMMARY | {"subject.id", "subject.gender", "subject.language", "vulnerability_factors", "protective_factors",
                  "risk_level", "urgency", "consent", "intervention_type", "narrative", "do_not_contact",
                  "referring_agency", "assigned_agencies", "updated_at"}
POLICE = CASE - {"narrative"}
SOCIAL = "social-services-caseworker"
POLICE_CLIENT = "community-police-caseworker"
YOUTH = "youth-ngo-caseworker"
HEALTH = "health-centre-caseworker"


def person(national_id: str, given_name: str) -> dict[str, Any]:
    subject = referral_body()["subject"] | {"given_name": given_name,
                                             "identifiers": [{"system": "national_id", "value": national_id}]}
    return {"subject": subject}


def paths(document: dict[str, Any]) -> set[str]:
    found = {k for k in document if k != "subject"}
    return found | {f"subject.{k}" for k in document.get("subject", {})}


def test_a_month_of_the_case_conference(
    app_client: TestClient, auth: Auth, state: AppState, post_referral: Callable[..., Any],
    move: Callable[..., Any],
) -> None:
    clock = Clock(state)
    chair = auth(COORDINATOR, **CONFERENCE)

    # Day 0: three referrals, triaged.
    amira = post_referral(**person("LB-100001", "Amira"))["id"]
    bilal = post_referral("school-south-referrer", **person("LB-100002", "Bilal"))["id"]
    chiara = post_referral(**person("LB-100003", "Chiara"))["id"]
    for rid in (amira, bilal, chiara):
        move(rid, "triaged")

    # Day 1: the chair schedules the monthly meeting; the agenda proposes the three.
    clock.at(START + timedelta(days=1))
    scheduled = app_client.post("/v1/networks/demo-city/meetings", headers=chair,
                                json={"scheduled_for": (START + timedelta(days=7)).isoformat()})
    assert scheduled.status_code == 201, scheduled.text
    meeting = scheduled.json()
    mid = meeting["id"]
    agenda = {item["referral_id"]: item for item in meeting["agenda"]}
    assert set(agenda) == {amira, bilal, chiara}
    assert {item["reason"] for item in agenda.values()} == {"newly_triaged"}
    assert agenda[amira]["invited"] == ["school-north"]  # its referrer, by default
    number = {rid: agenda[rid]["number"] for rid in agenda}

    # The chair invites different agencies to each item.
    invitations = {amira: ["city-community-police", "city-social-services", "school-north"],
                   bilal: ["youth-ngo-bridges"], chiara: ["city-health-centre"]}
    for rid, invited in invitations.items():
        edited = app_client.patch(f"/v1/meetings/{mid}/items/{number[rid]}", headers=chair,
                                  json={"invited": invited})
        assert edited.status_code == 200, edited.text

    # Each invited agency sees its items only, and each item's referral as its grant says.
    expected = {(SOCIAL, amira): ("referral.case", CASE), (POLICE_CLIENT, amira): ("referral.police", POLICE),
                (YOUTH, bilal): ("referral.summary", SUMMARY), (HEALTH, chiara): ("referral.case", CASE)}
    for (client, rid), (view, fields) in expected.items():
        seen = app_client.get(f"/v1/meetings/{mid}", headers=auth(client, **CONFERENCE))
        assert seen.status_code == 200, seen.text
        assert [i["referral_id"] for i in seen.json()["agenda"]] == [rid], client
        read = app_client.get(f"/v1/meetings/{mid}/items/{number[rid]}/referral", headers=auth(client, **CONFERENCE))
        assert read.status_code == 200, read.text
        assert read.headers["X-Granted-View"] == view
        assert paths(read.json()) == fields, (client, paths(read.json()) ^ fields)
        logged = [e for e in for_request(state, read.headers["X-Request-ID"]) if e.event_type == "disclosure"]
        assert len(logged) == 1 and logged[0].purpose == "case_conference"
        assert logged[0].details["record_ids"] == {"referral_id": rid}
        assert logged[0].details["meeting_id"] == mid
        assert set(logged[0].details["fields"]) == fields
    # ... and nothing of the items it is not invited to: refused, and the refusal logged.
    for client, rid in ((YOUTH, amira), (HEALTH, bilal), (POLICE_CLIENT, chiara), (SOCIAL, chiara)):
        refused = app_client.get(f"/v1/meetings/{mid}/items/{number[rid]}/referral",
                                 headers=auth(client, **CONFERENCE))
        assert refused.status_code == 403, (client, refused.text)
        assert rid not in refused.text
        assert [e.event_type for e in for_request(state, refused.headers["X-Request-ID"])] == ["denial"]
    # Outside the meeting, the invitation counts for nothing: the same read for the same purpose is refused.
    outside = app_client.get(f"/v1/referrals/{bilal}", headers=auth(YOUTH, **CONFERENCE))
    assert outside.status_code == 403, outside.text

    # Day 7: the meeting sits. Attendance, minutes and decisions per item.
    clock.at(START + timedelta(days=7, hours=10))
    for rid, invited in invitations.items():
        attended = app_client.patch(f"/v1/meetings/{mid}/items/{number[rid]}", headers=chair,
                                    json={"attended": invited})
        assert attended.status_code == 200, attended.text
    refused = app_client.post(f"/v1/meetings/{mid}/items/{number[chiara]}/minutes", headers=chair,
                              json={"text": "Refer on to the health service.", "decision": "refer_on"})
    assert refused.status_code == 409, refused.text  # triaged cannot close: the ordinary transition rules
    for rid in (amira, bilal, chiara):
        minuted = app_client.post(f"/v1/meetings/{mid}/items/{number[rid]}/minutes", headers=chair,
                                  json={"text": f"Discussed {rid}; the panel accepts.", "decision": "accept"})
        assert minuted.status_code == 201, minuted.text
        assert minuted.json()["kind"] == "minutes"
    status = app_client.get(f"/v1/referrals/{amira}", headers=auth(COORDINATOR, **PLANNING)).json()["status"]
    assert status == "accepted"
    # The panel's plan: social services and the police take Amira's case, the youth NGO Bilal's.
    move(amira, ("assigned", {"agencies": ["city-community-police", "city-social-services"]}))
    move(bilal, ("assigned", {"agencies": ["youth-ngo-bridges"]}))

    # Actions, with owners and due dates.
    def set_action(rid: str, owner: str, days: int) -> str:
        created = app_client.post(f"/v1/referrals/{rid}/actions", headers=auth(COORDINATOR), json={
            "description": f"Follow up {rid}", "owner_agency": owner,
            "due_on": (START + timedelta(days=days)).date().isoformat(), "meeting_id": mid, "number": number[rid]})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    home_visit = set_action(amira, "city-social-services", 14)
    police_check = set_action(amira, "city-community-police", 10)
    mentoring = set_action(bilal, "youth-ngo-bridges", 20)
    closed = app_client.post(f"/v1/meetings/{mid}/close", headers=chair)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    correction = app_client.post(f"/v1/meetings/{mid}/items/{number[amira]}/minutes", headers=chair,
                                 json={"text": "Correction: the school attended by video."})
    assert correction.status_code == 201 and correction.json()["kind"] == "correction"
    late = app_client.post(f"/v1/meetings/{mid}/items/{number[amira]}/minutes", headers=chair,
                           json={"text": "And we close it.", "decision": "close", "outcome": "risk_reduced"})
    assert late.status_code == 409
    # After the meeting, the invitation lapses.
    lapsed = app_client.get(f"/v1/meetings/{mid}/items/{number[bilal]}/referral", headers=auth(YOUTH, **CONFERENCE))
    assert lapsed.status_code == 403

    # Day 8: Chiara's case is closed.
    clock.at(START + timedelta(days=8))
    move(chiara, "closed")

    # Day 12: two actions done, the police one overdue.
    clock.at(START + timedelta(days=12))
    for client, action in ((SOCIAL, home_visit), ("youth-ngo-caseworker", mentoring)):
        done = app_client.post(f"/v1/actions/{action}/status", headers=auth(client),
                               json={"status": "done", "note": "Visited; the family engages."})
        assert done.status_code == 200, done.text
    mine = app_client.get("/v1/actions", headers=auth(POLICE_CLIENT, **PLANNING))
    assert mine.status_code == 200, mine.text
    assert [(a["id"], a["status"]) for a in mine.json()["items"]] == [(police_check, "overdue")]
    listed = app_client.get(f"/v1/referrals/{amira}/actions", headers=auth(COORDINATOR, **PLANNING))
    assert {a["id"]: a["status"] for a in listed.json()["items"]} == {home_visit: "done", police_check: "overdue"}
    assert {a["description"] for a in listed.json()["items"]} == {f"Follow up {amira}"}
    report = clocks.run(state)
    assert report.raised == {"action_overdue": 1}
    assert clocks.run(state).raised == {}  # raised once
    feed = app_client.get("/v1/events", headers=auth(COORDINATOR, **PLANNING), params={"limit": 200}).json()
    assert [(e["kind"], e["referral_id"]) for e in feed["items"] if e["kind"] != "status"] == [
        ("action_overdue", amira)]

    # Day 26: Amira is referred again: a repeat referral. Day 27: the next meeting's agenda.
    clock.at(START + timedelta(days=26))
    repeat = post_referral(**person("LB-100001", "Amira"))["id"]
    clock.at(START + timedelta(days=27))
    following = app_client.post("/v1/networks/demo-city/meetings", headers=chair,
                                json={"scheduled_for": (START + timedelta(days=35)).isoformat()})
    assert following.status_code == 201, following.text
    reasons = {i["referral_id"]: i["reason"] for i in following.json()["agenda"]}
    assert reasons == {repeat: "repeat_referral", amira: "open_actions"}  # the police check rolled over
    assert "city-community-police" in next(i for i in following.json()["agenda"] if i["referral_id"] == amira)[
        "invited"]

    # Six months after Chiara's closure, the clock raises her review, and it comes to the table.
    clock.at(START + timedelta(days=8 + 184))
    report = clocks.run(state)
    assert report.raised.get("review_due") == 1
    feed = app_client.get("/v1/events", headers=auth(COORDINATOR, **PLANNING),
                          params={"after": feed["next_cursor"]}).json()
    assert ("review_due", chiara) in {(e["kind"], e["referral_id"]) for e in feed["items"]}
    review = app_client.post("/v1/networks/demo-city/meetings", headers=chair,
                             json={"scheduled_for": (START + timedelta(days=200)).isoformat()})
    assert {i["referral_id"]: i["reason"] for i in review.json()["agenda"]}[chiara] == "review_due"

    # The minutes, corrections included, for a reader granted them.
    minutes = app_client.get(f"/v1/referrals/{amira}/minutes", headers=auth(COORDINATOR, **PLANNING))
    assert minutes.status_code == 200, minutes.text
    [held] = [i for i in minutes.json()["items"] if i["meeting_id"] == mid]
    assert held["decision"] == "accept" and held["attended"] == invitations[amira]
    assert [e["kind"] for e in held["entries"]] == ["minutes", "correction"]
    assert held["entries"][1]["text"] == "Correction: the school attended by video."
    withheld = app_client.get(f"/v1/referrals/{amira}/minutes", headers=auth(SOCIAL, **PLANNING))  # a view without them
    assert withheld.status_code == 403
