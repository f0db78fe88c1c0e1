"""The agreements for every signed-in person: the list, one agreement for people, and "who can receive this?"."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest


def _answer(page: str) -> str:
    start = page.index('id="who-answer"')
    return html.unescape(page[start:page.index("</main>")])


@pytest.mark.parametrize("person", ["rana-referrer", "nour-reader", "maya-auditor", "karim-coordinator", "olga-admin"])
def test_every_role_sees_the_agreements_of_its_agency(signed_in: Callable[..., Any], person: str) -> None:
    page = signed_in(person).get("/console/agreements")
    assert page.status_code == 200, page.text[:2000]
    assert "demo-city" in page.text and "Demo City Prevention Network" in page.text
    assert "demo-town" not in page.text  # not a party to the town's agreement


def test_the_detail_shows_parties_purposes_rules_and_dates(signed_in: Callable[..., Any]) -> None:
    page = signed_in("nour-reader").get("/console/agreements/demo-city")
    assert page.status_code == 200, page.text[:2000]
    text = html.unescape(page.text)
    for expected in ("Bridges Youth NGO", "City Health Centre", "Independent Data-Protection Auditor",
                     "service_provision", "Decide whether a referred person needs multi-agency support.",
                     "coordinator-full", "partner-summary", "national-authority-no-case-data", "P90D",
                     "P6Y after closed", "dpo@city-municipality.example"):
        assert expected in text, expected
    assert 'id="who-can"' in page.text and "Who can receive it?" in page.text


def test_the_detail_shows_the_content_hash(signed_in: Callable[..., Any], state: Any) -> None:
    found = state.policies.current.get("demo-city")
    page = signed_in("maya-auditor").get("/console/agreements/demo-city")
    assert found.content_hash in page.text


def test_who_can_answers_for_a_view(signed_in: Callable[..., Any]) -> None:
    page = signed_in("rana-referrer").get(
        "/console/agreements/demo-city?view=referral.summary&purpose=service_provision")
    assert page.status_code == 200
    answer = _answer(page.text)
    assert "partner-summary" in answer and "owner-full" in answer
    assert "Bridges Youth NGO" in answer  # the sector youth_work reaches it
    assert "coordinator-full" not in answer  # not for service_provision


def test_who_can_answers_for_a_field(signed_in: Callable[..., Any]) -> None:
    page = signed_in("rana-referrer").get("/console/agreements/demo-city?field=narrative&purpose=intervention_planning")
    assert page.status_code == 200
    answer = _answer(page.text)
    assert "coordinator-full" in answer and "assigned-agency-case" in answer
    assert "police-assigned-case" not in answer  # its view leaves the narrative out
    assert "partner-summary" not in answer and "assigned-partner-summary" not in answer


def test_who_can_for_nobody_says_so(signed_in: Callable[..., Any]) -> None:
    page = signed_in("rana-referrer").get("/console/agreements/demo-city?view=statistics&purpose=service_provision")
    assert page.status_code == 200
    assert "Nobody receives it" in page.text


@pytest.mark.parametrize("query", ["view=referral.summary", "view=referral.summary&field=narrative&purpose=statistics",
                                   "view=nope&purpose=statistics", "field=narrative&purpose=nope"])
def test_a_bad_question_is_the_form_again(signed_in: Callable[..., Any], query: str) -> None:
    page = signed_in("rana-referrer").get(f"/console/agreements/demo-city?{query}")
    assert page.status_code == 422
    assert 'class="field-error"' in page.text and 'id="who-answer"' not in page.text


def test_an_agreement_of_other_parties_is_not_found(signed_in: Callable[..., Any]) -> None:
    town = signed_in("town-coordinator-person")
    assert town.get("/console/agreements/demo-city").status_code == 404
    assert "demo-town" in town.get("/console/agreements").text
    assert signed_in("rana-referrer").get("/console/agreements/no-such-thing").status_code == 404


def test_signed_out_goes_to_sign_in(browser: Callable[[], Any], console_people: Any) -> None:
    page = browser().get("/console/agreements", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/console/sign-in")
