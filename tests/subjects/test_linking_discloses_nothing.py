"""Issue 11, finding 3: knowing a person's ID number links a referral to them, and shows nothing of them.

The health centre refers someone in full; the police then refer by the national id alone. The
police's referral joins the person's subject (the shared subject id, by design) but its reply
and every later read carry only what the police submitted; the link is logged and the
subject-access report names the police. Identifiers that name two different known people give
a referral of its own, flagged for the coordinator, never an endless 409.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from support.referrals import COORDINATOR, referral_body

from app.audit.models import AuditEntry
from app.referrals.models import Referral
from app.state import AppState
from app.statistics import service as statistics

Auth = Callable[..., dict[str, str]]
HEALTH = "health-centre-caseworker"
POLICE = "community-police-caseworker"
SCHOOL = "school-north-referrer"
POLICE_AGENCY = "city-community-police"
POLICE_PURPOSES = ("safeguarding_assessment", "intervention_planning", "service_provision")

NATIONAL_ID = "LB-4711-0815"
HEALTH_SUBJECT: dict[str, Any] = {
    "given_name": "Leilani",
    "family_name": "Quarashi-Testcase",
    "date_of_birth": "1998-07-23",
    "gender": "female",
    "phone": "+961-71-555-0199",
    "email": "leilani.q@example.org",
    "address": "7 Cedar Lane, Harbour Quarter",
    "district": "harbour-quarter-district",
    "identifiers": [{"system": "national_id", "value": NATIONAL_ID}],
    "religion": "religion-marker-hc",
    "ethnicity": "ethnicity-marker-hc",
    "language": "tl",
}
HEALTH_NARRATIVE = "Health-narrative-marker: seen at the clinic twice."
# Every way the health centre's values could show up in a response's raw text.
SECRETS = (
    "Leilani", "Quarashi", "1998-07-23", "23/07/1998", "07/23/1998", "19980723", "23.07.1998", "1998-07",
    "555-0199", "leilani.q@", "Cedar Lane", "Harbour Quarter", "harbour-quarter-district",
    "religion-marker-hc", "ethnicity-marker-hc", "Health-narrative-marker",
)


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret.lower() in text.lower()]


def police_body(identifiers: list[dict[str, str]]) -> dict[str, Any]:
    return referral_body(subject={"identifiers": identifiers}, narrative="Police-narrative: seen near the port.")


@pytest.fixture
def health_referral(app_client: TestClient, auth: Auth) -> dict[str, Any]:
    response = app_client.post(
        "/v1/referrals", json=referral_body(subject=HEALTH_SUBJECT, narrative=HEALTH_NARRATIVE), headers=auth(HEALTH)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def link_entries(state: AppState) -> list[AuditEntry]:
    with state.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.event_type == "link").order_by(AuditEntry.seq)))


def subject_report(app_client: TestClient, auth: Auth, subject_id: str) -> dict[str, Any]:
    response = app_client.get(f"/v1/subjects/{subject_id}/disclosures",
                              headers=auth(COORDINATOR, **{"X-Purpose": "subject_access"}))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


class TestFinding3:
    def test_the_police_reply_carries_only_what_the_police_submitted(
        self, app_client: TestClient, auth: Auth, health_referral: dict[str, Any]
    ) -> None:
        response = app_client.post("/v1/referrals", json=police_body([{"system": "national_id", "value": NATIONAL_ID}]),
                                   headers=auth(POLICE))

        assert response.status_code == 201, response.text
        assert leaked(response.text) == []
        subject = response.json()["subject"]
        assert subject["id"] == health_referral["subject"]["id"]  # linked: the shared id, by design
        assert subject["identifiers"] == [{"system": "national_id", "value": NATIONAL_ID}]
        assert subject["given_name"] is None and subject["date_of_birth"] is None
        assert subject["religion"] is None and subject["ethnicity"] is None
        assert subject["age_band"] is None and subject["district"] is None

    def test_every_later_read_of_the_police_carries_none_of_it(
        self, app_client: TestClient, auth: Auth, health_referral: dict[str, Any]
    ) -> None:
        police = app_client.post("/v1/referrals", json=police_body([{"system": "national_id", "value": NATIONAL_ID}]),
                                 headers=auth(POLICE)).json()

        for purpose in POLICE_PURPOSES:
            read = app_client.get(f"/v1/referrals/{police['id']}", headers=auth(POLICE, **{"X-Purpose": purpose}))
            assert read.status_code == 200, (purpose, read.text)
            assert read.json()["subject"]["id"] == health_referral["subject"]["id"]
            assert leaked(read.text) == [], purpose
            listed = app_client.get("/v1/referrals", headers=auth(POLICE, **{"X-Purpose": purpose}))
            assert listed.status_code == 200, listed.text
            assert [r["id"] for r in listed.json()["items"]] == [police["id"]]
            assert leaked(listed.text) == [], purpose
        # The health centre's own reads still show all it submitted.
        own = app_client.get(f"/v1/referrals/{health_referral['id']}",
                             headers=auth(HEALTH, **{"X-Purpose": "safeguarding_assessment"}))
        assert own.json()["subject"]["given_name"] == "Leilani"
        assert own.json()["subject"]["religion"] == "religion-marker-hc"

    def test_the_link_is_logged_with_ids_and_no_values(
        self, app_client: TestClient, auth: Auth, state: AppState, health_referral: dict[str, Any]
    ) -> None:
        police = app_client.post("/v1/referrals", json=police_body([{"system": "national_id", "value": NATIONAL_ID}]),
                                 headers=auth(POLICE)).json()

        [entry] = link_entries(state)
        assert (entry.actor_agency, entry.recipient_agency) == (POLICE_AGENCY, POLICE_AGENCY)
        assert entry.subject_index is not None
        found = app_client.get("/v1/audit/entries", params={"event_type": "link"},
                               headers=auth("independent-auditor"))
        assert found.status_code == 200, found.text
        [item] = found.json()["items"]
        assert item["details"]["record_ids"] == {
            "referral_id": police["id"], "subject_id": police["subject"]["id"],
            "linked_referral_ids": [health_referral["id"]],
        }
        assert item["details"]["link"] == "linked" and item["details"]["fields"] == ["subject.id"]
        assert leaked(found.text) == [] and NATIONAL_ID not in found.text

    def test_the_subject_access_report_lists_the_police(
        self, app_client: TestClient, auth: Auth, health_referral: dict[str, Any]
    ) -> None:
        app_client.post("/v1/referrals", json=police_body([{"system": "national_id", "value": NATIONAL_ID}]),
                        headers=auth(POLICE))

        report = subject_report(app_client, auth, health_referral["subject"]["id"])
        recipients = {r["agency"]: r for r in report["recipients"]}
        assert POLICE_AGENCY in recipients
        assert recipients[POLICE_AGENCY]["fields"] == ["subject.id"]
        assert any(i["event_type"] == "link" and i["recipient_agency"] == POLICE_AGENCY for i in report["items"])

    def test_a_person_new_to_the_network_leaves_no_link_entry(
        self, app_client: TestClient, auth: Auth, state: AppState
    ) -> None:
        response = app_client.post("/v1/referrals", json=police_body([{"system": "national_id", "value": "LB-NEW-1"}]),
                                   headers=auth(POLICE))
        assert response.status_code == 201, response.text
        assert link_entries(state) == []

    def test_statistics_count_each_referral_with_its_own_district_and_age_band(
        self, app_client: TestClient, auth: Auth, state: AppState, health_referral: dict[str, Any]
    ) -> None:
        app_client.post("/v1/referrals", json=police_body([{"system": "national_id", "value": NATIONAL_ID}]),
                        headers=auth(POLICE))

        with state.sessions() as session:
            rows = list(statistics.records(session, ["district", "age_band"]))
        assert sorted(rows, key=lambda r: str(r["district"] or "")) == [
            {"district": None, "age_band": None},
            {"district": "harbour-quarter-district", "age_band": health_referral["subject"]["age_band"]},
        ]


class TestTwoKnownPeople:
    @pytest.fixture
    def two_people(self, app_client: TestClient, auth: Auth, health_referral: dict[str, Any]) -> tuple[str, str]:
        other = referral_body(subject=referral_body()["subject"] | {
            "identifiers": [{"system": "school-north:pupil", "value": "P-2231"}]})
        school = app_client.post("/v1/referrals", json=other, headers=auth(SCHOOL))
        assert school.status_code == 201, school.text
        return health_referral["subject"]["id"], school.json()["subject"]["id"]

    IDENTIFIERS = [{"system": "national_id", "value": NATIONAL_ID}, {"system": "school-north:pupil", "value": "P-2231"}]

    def test_the_referral_is_accepted_unlinked_and_flagged(
        self, app_client: TestClient, auth: Auth, two_people: tuple[str, str]
    ) -> None:
        for _ in range(2):  # and again: never an endless 409
            response = app_client.post("/v1/referrals", json=police_body(self.IDENTIFIERS), headers=auth(POLICE))
            assert response.status_code == 201, response.text
            body = response.json()
            assert body["subject"]["id"] not in two_people
            assert body["link_conflicts"] == sorted(two_people)
            assert leaked(response.text) == [] and "Yasmin" not in response.text

    def test_the_coordinator_sees_the_flag(
        self, app_client: TestClient, auth: Auth, two_people: tuple[str, str]
    ) -> None:
        police = app_client.post("/v1/referrals", json=police_body(self.IDENTIFIERS), headers=auth(POLICE)).json()

        read = app_client.get(f"/v1/referrals/{police['id']}",
                              headers=auth(COORDINATOR, **{"X-Purpose": "safeguarding_assessment"}))
        assert read.status_code == 200, read.text
        assert read.json()["link_conflicts"] == sorted(two_people)
        narrower = app_client.get(f"/v1/referrals/{police['id']}", params={"view": "referral.case"},
                                  headers=auth(COORDINATOR, **{"X-Purpose": "safeguarding_assessment"}))
        assert narrower.status_code == 200, narrower.text
        assert "link_conflicts" not in narrower.json()  # only views that name it show it
        listed = app_client.get("/v1/referrals", headers=auth(COORDINATOR, **{"X-Purpose": "safeguarding_assessment"}))
        flags = {r["id"]: r.get("link_conflicts") for r in listed.json()["items"]}
        assert flags[police["id"]] == sorted(two_people)
        assert [f for i, f in flags.items() if i != police["id"]] == [[], []]

    def test_each_known_person_s_report_names_the_agency_that_learned_their_subject_id(
        self, app_client: TestClient, auth: Auth, state: AppState, two_people: tuple[str, str]
    ) -> None:
        app_client.post("/v1/referrals", json=police_body(self.IDENTIFIERS), headers=auth(POLICE))

        assert len(link_entries(state)) == 2
        for subject_id in two_people:
            report = subject_report(app_client, auth, subject_id)
            assert POLICE_AGENCY in {r["agency"] for r in report["recipients"]}

    def test_an_identifier_nobody_held_stays_with_the_new_subject(
        self, app_client: TestClient, auth: Auth, two_people: tuple[str, str]
    ) -> None:
        fresh = {"system": "national_id", "value": "LB-FRESH-77"}
        flagged = app_client.post("/v1/referrals", json=police_body([*self.IDENTIFIERS, fresh]),
                                  headers=auth(POLICE)).json()
        later = app_client.post("/v1/referrals", json=police_body([fresh]), headers=auth(POLICE)).json()
        assert later["subject"]["id"] == flagged["subject"]["id"]
        assert later["link_conflicts"] == []


def test_a_submission_moved_to_another_referral_of_the_person_fails_to_open(
    app_client: TestClient, auth: Auth, state: AppState, health_referral: dict[str, Any]
) -> None:
    police = app_client.post("/v1/referrals", json=police_body([{"system": "national_id", "value": NATIONAL_ID}]),
                             headers=auth(POLICE)).json()
    with state.sessions() as session:
        mine, theirs = session.get(Referral, police["id"]), session.get(Referral, health_referral["id"])
        assert mine is not None and theirs is not None
        mine.subject_submission = theirs.subject_submission  # same person, same key: bound to the referral
        session.commit()

    read = app_client.get(f"/v1/referrals/{police['id']}",
                          headers=auth(POLICE, **{"X-Purpose": "safeguarding_assessment"}))
    assert read.status_code == 500 and read.json()["type"].endswith("integrity-failure")
    assert leaked(read.text) == []
