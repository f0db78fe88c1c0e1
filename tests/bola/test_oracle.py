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
from bola.oracle import EMERGENCY, Caller, Oracle

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
    caller = Caller("case", spec["agency"], spec.get("sector", ""), frozenset(spec.get("roles") or ()))
    relations = frozenset(spec.get("relations") or ())
    record = dict(case.get("record") or {})
    kind = record.pop("kind", "referral")
    attributes: dict[str, Any] = {k: frozenset(v) if isinstance(v, list) else str(v) for k, v in record.items()}
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
