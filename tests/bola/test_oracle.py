"""The matrix's oracle agrees with the documented policy cases (policies/tests, examples/tests).

The cases are written by the agreements' authors, not derived from the engine: a permit's view
must lie within the oracle's upper bound, a deny must leave the bound empty (or, when a view was
asked for, not cover it).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from bola.oracle import CONFERENCE, EMERGENCY, AgendaItem, Caller, Meeting, Oracle, Rec

POLICIES = Path(__file__).resolve().parents[2] / "policies"
FOLDERS = {"demo": POLICIES, "examples": POLICIES / "examples"}


def _cases() -> list[Any]:
    found = []
    for name, folder in FOLDERS.items():
        for path in sorted((folder / "tests").glob("*.yaml")):
            doc = yaml.safe_load(path.read_text())
            for case in doc.get("cases") or ():
                found.append(pytest.param(name, doc, case, id=f"{path.stem}: {case['name']}"))
    return found


@pytest.mark.parametrize(("folder", "doc", "case"), _cases())
def test_the_oracle_reads_each_documented_case_alike(folder: str, doc: dict[str, Any], case: dict[str, Any]) -> None:
    loaded = Oracle.load(FOLDERS[folder], date.today())
    agreement = next(a for a in loaded.agreements if a.id == doc["agreement"])
    when = case.get("now") or doc.get("now") or agreement.effective_from
    oracle = Oracle(loaded.agreements, loaded.networks, when if isinstance(when, date) else date.fromisoformat(when))
    spec = case["caller"]
    caller = Caller("case", spec["agency"], spec.get("sector", ""), frozenset(spec.get("roles") or ()),
                    frozenset(spec.get("training") or ()))
    relations = frozenset(spec.get("relations") or ())
    record = dict(case.get("record") or {})
    kind = record.pop("kind", "referral")
    attributes: dict[str, Any] = {
        k: frozenset(v) if isinstance(v, list) else v if isinstance(v, bool) else str(v) for k, v in record.items()
    }
    attributes.setdefault("invited", False)  # as on every read outside a meeting's agenda item
    network = attributes.pop("network", sorted(agreement.networks)[0])
    purpose = case["purpose"]
    expect = case["expect"]
    permit = expect["decision"] == "permit"
    if purpose == EMERGENCY:
        pytest.skip("emergency reads need an active grant; the matrix makes one")
    if kind == "note":
        assert oracle.note_granted_for(caller, network, relations, attributes, purpose) is permit
    elif kind == "statistics":
        granted = oracle.statistics_permits(caller, purpose, network)
        if case.get("view"):  # a permit must grant that view (its dimensions) itself
            wanted = oracle.dimensions(agreement, case["view"])
            assert any(wanted <= oracle.dimensions(a, v) for a, v in granted) is permit, granted
        else:
            assert bool(granted) is permit, granted
    else:
        bound = oracle.bound_for(caller, network, relations, attributes, purpose)
        asked = case.get("view") or (expect.get("view") if permit else None)
        if asked:
            fields = oracle.referral_fields(agreement, asked)
            assert fields, f"view {asked} resolves to no field"
            assert (fields <= bound) is permit, (sorted(fields - bound), sorted(bound))
        else:
            assert bool(bound) is permit, sorted(bound)


CHAIRS = {"demo-city": "city-municipality", "demo-town": "town-council",  # the demo's, written out by hand
          "training-demo": "training-demo-coordination"}


def test_the_oracle_knows_each_demo_network_chair() -> None:
    """The oracle reads the chair from the network file (README: by default its coordinator); the
    demo's chairs are pinned here so a change to either shows."""
    oracle = Oracle.load(POLICIES, date.today())
    assert {n: network.chair for n, network in oracle.networks.items()} == CHAIRS


def test_the_oracle_reads_an_agenda_item_as_the_conference_rules_say() -> None:
    """policies/demo-city.yaml by hand: invited statutory partners see the case, police no narrative and
    only with consent, partners the summary of a consenting person; nothing once the meeting is closed,
    nothing to an agency not at the item, nothing for another purpose; the chair all of it."""
    oracle = Oracle.load(POLICIES, date(2026, 12, 4))
    social = Caller("s", "city-social-services", "social_services", frozenset({"referrer", "caseworker"}))
    police = Caller("p", "city-community-police", "police", frozenset({"referrer", "caseworker"}))
    partner = Caller("y", "youth-ngo-bridges", "youth_work", frozenset({"caseworker"}))
    reader = Caller("r", "youth-ngo-bridges", "youth_work", frozenset({"partner_reader"}))
    chair = Caller("c", "city-municipality", "local_government", frozenset({"coordinator"}))
    town = Caller("t", "town-council", "local_government", frozenset({"coordinator"}))
    item = AgendaItem(1, "r1", frozenset({"city-social-services", "city-community-police", "youth-ngo-bridges"}))
    meeting = Meeting("m1", "demo-city", True, {1: item})
    given = Rec("r1", "demo-city", "school-north", "triaged", "given", "low")
    withdrawn = Rec("r1", "demo-city", "school-north", "triaged", "withdrawn", "low")
    case = oracle.agenda_bound(social, meeting, item, given, CONFERENCE)
    assert "narrative" in case and "subject.given_name" not in case
    assert oracle.agenda_bound(police, meeting, item, given, CONFERENCE) == case - {"narrative"}
    assert not oracle.agenda_bound(police, meeting, item, withdrawn, CONFERENCE)
    assert oracle.agenda_bound(partner, meeting, item, given, CONFERENCE) == {
        "id", "subject.age_band", "subject.district", "concerns", "requested_services", "status"}
    assert not oracle.agenda_bound(reader, meeting, item, given, CONFERENCE)
    assert not oracle.agenda_bound(social, meeting, item, given, "intervention_planning")
    assert {"subject.given_name", "minutes", "actions"} <= oracle.agenda_bound(chair, meeting, item, given, CONFERENCE)
    assert not oracle.agenda_bound(town, meeting, item, given, CONFERENCE)
    closed = Meeting("m2", "demo-city", False, {1: item})
    assert not oracle.agenda_bound(social, closed, item, given, CONFERENCE)
    assert oracle.agenda_bound(chair, closed, item, given, CONFERENCE)  # coordinator-full needs no invitation
    elsewhere = AgendaItem(2, "r1", frozenset({"city-health-centre"}))
    assert not oracle.agenda_bound(social, Meeting("m3", "demo-city", True, {2: elsewhere}), elsewhere, given,
                                   CONFERENCE)
    assert oracle.meetings_listed(social, "demo-city", [meeting, closed]) == frozenset({"m1", "m2"})
    assert oracle.meetings_listed(town, "demo-city", [meeting]) is None
    assert oracle.meetings_listed(chair, "demo-city", [Meeting("m4", "demo-city")]) == frozenset({"m4"})
