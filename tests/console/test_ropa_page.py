"""The record of processing in the console: every Art. 30(1) item for every network, for coordinators and auditors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.referrals import NARRATIVE

from app.policy.ropa import ART30_ITEMS, security_measures
from app.state import AppState

PAGE = "/console/audit/processing"
NETWORKS = {"demo-city": "prevention@demo-city.example", "demo-town": "cat@demo-town.example"}
DPOS = {"demo-city": "dpo@demo-city.example", "demo-town": "dpo@demo-town.example"}
CASE_MARKERS = (NARRATIVE, "Yasmin", "Haddad-Testperson", "LB-778899", "555-0101", "religion-marker")


@pytest.mark.parametrize("person", ["karim-coordinator", "maya-auditor", "town-coordinator-person"])
def test_every_item_for_every_network(signed_in: Callable[..., Any], post_referral: Callable[..., Any],
                                      state: AppState, person: str) -> None:
    post_referral()
    page = signed_in(person).get(PAGE)
    assert page.status_code == 200
    html = page.text
    for network, controller in NETWORKS.items():
        section = html[html.index(f'id="ropa-network-{network}"'):]
        section = section[: section.index("</section>")]
        assert 'class="message error"' not in section  # nothing left undeclared
        for item in ART30_ITEMS:
            assert f'id="ropa-{network}-{item}"' in section, item
        assert controller in section and DPOS[network] in section
        assert f'id="ropa-{network}-no-transfers"' in section
        assert "Special categories" in section and '<strong class="special">' in section
        for measure in security_measures(state.settings):
            assert f'id="ropa-{network}-measure-{measure["id"]}"' in section
            assert measure["measure"].split(";")[0][:40] in section.replace("&#39;", "'")
    assert 'class="report"' in html and "Print" in html
    for marker in CASE_MARKERS:
        assert marker not in html, marker


def test_linked_from_the_navigation_for_those_who_may_read_it(signed_in: Callable[..., Any]) -> None:
    link = f'href="{PAGE}"'
    assert link in signed_in("karim-coordinator").get("/console/").text
    assert link in signed_in("maya-auditor").get("/console/agreements").text
    assert link not in signed_in("rana-referrer").get("/console/").text


def test_it_prints_each_network_on_its_own_page(signed_in: Callable[..., Any]) -> None:
    coordinator = signed_in("karim-coordinator")
    assert '<div class="report">' in coordinator.get(PAGE).text
    css = coordinator.get("/console/static/console.css").text
    print_rules = css[css.rindex("@media print"):]
    assert ".report section.processing { break-before: page; }" in print_rules


@pytest.mark.parametrize("person", ["rana-referrer", "nour-reader", "olga-admin", "youth-caseworker"])
def test_others_are_refused(signed_in: Callable[..., Any], person: str) -> None:
    page = signed_in(person).get(PAGE)
    assert page.status_code == 403
    assert 'id="ropa-network-demo-city"' not in page.text
