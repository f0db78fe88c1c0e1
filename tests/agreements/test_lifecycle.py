"""An agreement's period in force, over HTTP: the work list warns before its review_by, and once it
has passed (or before effective_from) every refusal says which agreement lapsed, not "not open to you"."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.referrals import COORDINATOR, REFERRER, referral_body
from support.refusals import one_denial
from support.row_counts import counts
from typer.testing import CliRunner

from app.cli import cli
from app.policy.model import Agreement
from app.policy.policy_set import PolicySet
from app.state import AppState

Auth = Callable[..., dict[str, str]]
PURPOSE = "safeguarding_assessment"
EXPIRED = ("agreement demo-city version 3 expired on 2027-06-30 (its review_by); nothing is shared under it "
           "until a renewed version is signed")
NOT_YET = ("agreement demo-city version 3 takes effect on 2026-01-01 (its effective_from); nothing is shared "
           "under it before then")


def at(state: AppState, day: date) -> None:
    """The app's clock held at 09:00 on `day` (tokens are made after it moves)."""
    moment = datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)
    state.clock = lambda: moment


def only_these(state: AppState, *agreements: Agreement) -> None:
    """The agreements deciding from now on (the networks as declared): a lapse set up without files."""
    current = state.policies.current
    state.policies._current = PolicySet.of(agreements, current.declared.values())  # noqa: SLF001


def slug(response: Any) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


@pytest.fixture
def case(post_referral: Callable[..., Any]) -> str:
    rid: str = post_referral()["id"]
    return rid


class TestWorklistWarnsBeforeReview:
    def worklist(self, app_client: TestClient, auth: Auth, **params: str) -> Any:
        response = app_client.get("/v1/networks/demo-city/worklist", params=params,
                                  headers=auth(COORDINATOR, **{"X-Purpose": PURPOSE}))
        assert response.status_code == 200, response.text
        return response.json()

    @pytest.mark.parametrize(("day", "expected"), [
        (date(2027, 4, 30), None),  # 61 days ahead: nothing yet
        (date(2027, 5, 1), ("agreement_review_60", 60)),
        (date(2027, 5, 31), ("agreement_review_30", 30)),
        (date(2027, 6, 29), ("agreement_review_30", 1)),
    ])
    def test_items_60_and_30_days_ahead(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: Any, day: date,
        expected: tuple[str, int] | None,
    ) -> None:
        at(state, day)
        body = self.worklist(app_client, auth)
        if expected is None:
            assert body["agreements"] == []
            return
        kind, left = expected
        # The network's own agreement, and the national one that decides its records too.
        assert [(a["agreement"], a["kind"], a["days_left"]) for a in body["agreements"]] == [
            ("demo-city", kind, left), ("national-statistics", kind, left)]
        assert body["agreements"][0] == {
            "kind": kind, "agreement": "demo-city", "version": 3, "review_by": "2027-06-30", "days_left": left,
            "detail": f"agreement demo-city version 3 is due for review by 2027-06-30 ({left} days): from that "
                      "day nothing is shared under it until a renewed version is signed"}

    def test_filtered_by_kind_and_only_on_the_first_page(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str, post_referral: Callable[..., Any],
    ) -> None:
        second = post_referral()["id"]
        at(state, date(2027, 6, 10))
        assert [a["kind"] for a in self.worklist(app_client, auth, kind="agreement_review_30")["agreements"]] == [
            "agreement_review_30", "agreement_review_30"]
        only = self.worklist(app_client, auth, kind="agreement_review_60")
        assert only["agreements"] == [] and only["items"] == []
        referrals_only = self.worklist(app_client, auth, kind="triage_overdue")
        assert referrals_only["agreements"] == []
        assert sorted(i["referral_id"] for i in referrals_only["items"]) == sorted([case, second])
        first = self.worklist(app_client, auth, limit="1")
        assert len(first["agreements"]) == 2 and len(first["items"]) == 1
        # Nothing of a referral in them: the agreement, its version and dates.
        assert set(first["agreements"][0]) == {"kind", "agreement", "version", "review_by", "days_left", "detail"}
        rest = self.worklist(app_client, auth, limit="1", cursor=first["next_cursor"])
        assert rest["agreements"] == [] and len(rest["items"]) == 1

    def test_not_for_others_than_the_coordinator(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: Any,
    ) -> None:
        at(state, date(2027, 6, 10))
        response = app_client.get("/v1/networks/demo-city/worklist",
                                  headers=auth(REFERRER, **{"X-Purpose": PURPOSE}))
        assert response.status_code == 403
        town = app_client.get("/v1/networks/demo-town/worklist",
                              headers=auth("town-coordinator", **{"X-Purpose": PURPOSE}))
        assert [a["agreement"] for a in town.json()["agreements"]] == ["demo-town", "national-statistics"]


class TestExpiredAgreementSaysSo:
    def test_reads_say_the_agreement_expired(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str,
    ) -> None:
        at(state, date(2027, 6, 30))
        for path in (f"/v1/referrals/{case}", "/v1/referrals", f"/v1/referrals/{case}/notes", "/v1/events"):
            response = app_client.get(path, headers=auth(REFERRER, **{"X-Purpose": PURPOSE}))
            assert response.status_code == 403, (path, response.text)
            problem = response.json()
            assert slug(response) == "agreement-expired"
            assert problem["detail"] == f"Purpose {PURPOSE!r} is not open to you: {EXPIRED}."
            assert (problem["agreement"], problem["agreement_version"], problem["purposes"]) == ("demo-city", 3, [])
            entry = one_denial(state, response, "Yasmin")
            assert EXPIRED in str(entry.details)

    def test_a_purpose_of_no_lapsed_agreement_is_still_unknown(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str,
    ) -> None:
        at(state, date(2027, 6, 30))
        response = app_client.get(f"/v1/referrals/{case}", headers=auth(REFERRER, **{"X-Purpose": "marketing"}))
        assert response.status_code == 400 and slug(response) == "purpose-unknown"

    def test_before_effective_from_it_says_when_it_begins(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str,
    ) -> None:
        at(state, date(2025, 12, 31))
        response = app_client.get(f"/v1/referrals/{case}", headers=auth(COORDINATOR, **{"X-Purpose": PURPOSE}))
        assert response.status_code == 403
        assert slug(response) == "agreement-not-yet-effective"
        assert NOT_YET in response.json()["detail"]

    def test_a_read_under_another_agreement_in_force_names_the_lapsed_one(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str,
    ) -> None:
        """The purpose is open (through an agreement of another network): the decision itself says it."""
        policies = state.policies.current
        city, town = policies.get("demo-city"), policies.get("demo-town")
        assert city is not None and town is not None
        lapsed = replace(city, review_by=date(2026, 12, 1))
        only_these(state, lapsed, replace(town, parties=(*town.parties, "school-north")))
        at(state, date(2026, 12, 2))
        response = app_client.get(f"/v1/referrals/{case}", headers=auth(REFERRER, **{"X-Purpose": PURPOSE}))
        assert response.status_code == 403, response.text
        assert slug(response) == "agreement-expired"
        assert response.json()["reason"] == (
            "agreement demo-city version 3 expired on 2026-12-01 (its review_by); nothing is shared under it "
            "until a renewed version is signed")
        entry = one_denial(state, response, "Yasmin")
        assert entry.agreement_id == "demo-city"

    def test_changes_say_the_agreement_expired(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str,
    ) -> None:
        at(state, date(2027, 7, 1))
        before = counts(state)
        response = app_client.post(f"/v1/referrals/{case}/transitions", json={"to": "triaged"},
                                   headers=auth(COORDINATOR))
        assert response.status_code == 403, response.text
        assert slug(response) == "agreement-expired"
        assert response.json()["detail"].endswith(
            "agreement demo-city version 3 expired on 2027-06-30 (its review_by); nothing is shared under it "
            "until a renewed version is signed.")
        after = counts(state)
        assert after.pop("audit_entries") == before.pop("audit_entries") + 1  # the denial, and nothing else
        assert after == before
        one_denial(state, response)

    def test_the_work_list_says_the_agreement_expired(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: Any,
    ) -> None:
        at(state, date(2027, 6, 30))
        response = app_client.get("/v1/networks/demo-city/worklist",
                                  headers=auth(COORDINATOR, **{"X-Purpose": PURPOSE}))
        assert response.status_code == 403 and slug(response) == "agreement-expired"
        assert response.json()["detail"] == f"The work list of network 'demo-city': {EXPIRED}."
        one_denial(state, response)
        stranger = app_client.get("/v1/networks/demo-city/worklist",
                                  headers=auth(REFERRER, **{"X-Purpose": PURPOSE}))
        assert stranger.status_code == 403 and slug(stranger) == "access-denied"

    def test_explain_says_the_agreement_expired(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str,
    ) -> None:
        at(state, date(2027, 6, 30))
        mine = app_client.post("/v1/decisions/explain", json={"purpose": PURPOSE, "referral_id": case},
                               headers=auth(REFERRER))
        assert mine.status_code == 403 and slug(mine) == "agreement-expired"
        assert EXPIRED in mine.json()["detail"]
        record = {"status": "submitted", "relations": ["owner"]}
        described = app_client.post("/v1/decisions/explain", json={"purpose": PURPOSE, "record": record},
                                    headers=auth(REFERRER))
        assert described.status_code == 200, described.text
        decision = described.json()["decision"]
        assert (decision["permit"], decision["reason_code"]) == (False, "agreement_expired")
        assert decision["reason"] == EXPIRED


def test_the_cli_explains_an_expired_agreement() -> None:
    args = ["policy", "explain", "--agency", "school-north", "--sector", "education", "--roles", "referrer",
            "--relations", "owner", "--purpose", PURPOSE, "--record", "status=submitted"]
    expired = CliRunner().invoke(cli, [*args, "--on", "2027-06-30"])
    assert expired.exit_code == 3, expired.output
    decision = json.loads(expired.stdout)["decision"]
    assert (decision["reason_code"], decision["reason"]) == ("agreement_expired", EXPIRED)
    assert CliRunner().invoke(cli, [*args, "--on", "2027-06-29"]).exit_code == 0


class TestNoNewReferralWithoutAnAgreementInForce:
    @pytest.mark.parametrize("network", [None, "demo-city"])
    def test_refused_with_the_reason_nothing_written_and_logged(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: Any, network: str | None,
    ) -> None:
        at(state, date(2027, 6, 30))
        before = counts(state)
        body = referral_body() | ({"network": network} if network else {})
        response = app_client.post("/v1/referrals", json=body, headers=auth(REFERRER))
        assert response.status_code == 403, response.text
        assert slug(response) == "agreement-expired"
        problem = response.json()
        assert problem["detail"] == f"No new referral into network 'demo-city': {EXPIRED}."
        assert (problem["network"], problem["agreement"], problem["agreement_version"]) == ("demo-city", "demo-city", 3)
        assert "Yasmin" not in response.text
        one_denial(state, response, "Yasmin", "Haddad")
        after = counts(state)
        assert after.pop("audit_entries") == before.pop("audit_entries") + 1
        assert after == before

    def test_not_yet_effective_likewise(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: Any,
    ) -> None:
        at(state, date(2025, 12, 31))
        response = app_client.post("/v1/referrals", json=referral_body(), headers=auth("town-school-referrer"))
        assert response.status_code == 403 and slug(response) == "agreement-not-yet-effective"
        assert "agreement demo-town version 1 takes effect on 2026-01-01" in response.json()["detail"]

    def test_the_other_network_still_takes_referrals(
        self, app_client: TestClient, auth: Auth, state: AppState, demo: Any,
    ) -> None:
        policies = state.policies.current
        city, town = policies.get("demo-city"), policies.get("demo-town")
        assert city is not None and town is not None
        only_these(state, replace(city, review_by=date(2026, 12, 1)), town)
        at(state, date(2026, 12, 2))
        refused = app_client.post("/v1/referrals", json=referral_body(), headers=auth(REFERRER))
        assert refused.status_code == 403 and slug(refused) == "agreement-expired"
        taken = app_client.post("/v1/referrals", json=referral_body(), headers=auth("town-school-referrer"))
        assert taken.status_code == 201, taken.text

    def test_no_transfer_into_a_network_whose_agreement_lapsed(
        self, app_client: TestClient, auth: Auth, state: AppState, case: str,
    ) -> None:
        policies = state.policies.current
        city, town = policies.get("demo-city"), policies.get("demo-town")
        assert city is not None and town is not None
        only_these(state, city, replace(town, review_by=date(2026, 12, 1)))
        at(state, date(2026, 12, 2))
        headers = auth(COORDINATOR)
        before = counts(state)
        response = app_client.post(f"/v1/referrals/{case}/transitions",
                                   json={"to": "transferred", "to_network": "demo-town", "reason": "moved"},
                                   headers=headers)
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert (error["path"], error["type"]) == ("$.to_network", "no_agreement_in_force")
        assert error["message"] == (
            "network 'demo-town' has no agreement in force and takes no new referral: agreement demo-town "
            "version 1 expired on 2026-12-01 (its review_by); nothing is shared under it until a renewed "
            "version is signed")
        assert counts(state) == before
