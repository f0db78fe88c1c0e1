"""Factories for policy tests: agreements from dicts, callers, records and the shipped sets."""

import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from app.policy.decision import Caller, Record
from app.policy.loader import LoadResult, load_agreements, parse_agreement
from app.policy.model import Agreement
from app.policy.policy_set import PolicySet

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
EXAMPLES = POLICIES / "examples"
IN_FORCE = date(2026, 6, 1)
# minimal_document()'s agreement names no network, so it decides the records of its own id.
TEST_NETWORK = "test-net"
DEMO = "demo-city"  # the shipped demo agreement's network

# A small valid agreement file; tests break it one line at a time.
GOOD = textwrap.dedent(
    """\
    agreement: net
    version: 2
    title: A network
    effective_from: 2026-01-01
    review_by: 2027-01-01
    controller_contact: dpo@net.example
    parties: [town-hall, school-1, police-1]
    purposes:
      assessment: Assess a referral.
      statistics: Count.
    views:
      referral.summary: [id, concerns, status]
      referral.case:
        include: [referral.summary]
        fields: [narrative, risk_level]
      referral.full: [subject.*, concerns]
      notes.shared: {notes: {classification: [shared]}}
      statistics: {aggregate: [concerns, district]}
    rules:
      - id: case-to-hall
        to: {agencies: [town-hall]}
        view: referral.case
        purposes: [assessment]
        legal_basis: public_task
        retention: P6Y after closed
      - id: stats
        to: {sectors: [national_authority]}
        view: statistics
        purposes: [statistics]
        legal_basis: public_task
        retention: P5Y
    deny:
      - id: no-health-to-police
        to: {sectors: [police]}
        view: {notes: {classification: [health]}}
    """
)


def minimal_document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "agreement": "test-net",
        "version": 1,
        "title": "Test network",
        "effective_from": date(2026, 1, 1),
        "review_by": date(2027, 1, 1),
        "controller_contact": "dpo@test.example",
        "parties": ["agency-a", "agency-b", "police-x", "ngo-y"],
        "purposes": {
            "assessment": "Assess.",
            "service_provision": "Serve.",
            "statistics": "Count.",
        },
        "views": {
            "referral.summary": ["id", "subject.age_band", "concerns", "status"],
            "referral.case": {
                "include": ["referral.summary"],
                "fields": ["narrative", "risk_level"],
            },
            "notes.shared": {"notes": {"classification": ["shared"]}},
            "statistics": {"aggregate": ["concerns", "district"]},
        },
        "rules": [
            {
                "id": "case-to-a",
                "to": {"agencies": ["agency-a"]},
                "view": "referral.case",
                "purposes": ["assessment"],
                "legal_basis": "public_task",
                "retention": "P1Y",
            }
        ],
    }
    document.update(overrides)
    return document


def agreement_from(document: dict[str, Any], source: str = "test.yaml") -> Agreement:
    parsed = parse_agreement(yaml.safe_dump(document, sort_keys=False).encode(), source)
    assert parsed.agreement is not None, [str(e) for e in parsed.errors]
    return parsed.agreement


def policy_set_of(*documents: dict[str, Any]) -> PolicySet:
    return PolicySet.of(agreement_from(d, f"{d['agreement']}.yaml") for d in documents)


def caller(
    agency: str,
    sector: str,
    roles: tuple[str, ...] = (),
    relations: tuple[str, ...] = (),
    trained: tuple[str, ...] = (),
) -> Caller:
    return Caller(f"client-{agency}", agency, sector, frozenset(roles), frozenset(relations), frozenset(trained))


def _of(network: str | None, attributes: dict[str, str]) -> dict[str, str]:
    return attributes if network is None else {"network": network, **attributes}


def referral(network: str | None = TEST_NETWORK, **attributes: str) -> Record:
    """A referral of `network` (default: the test agreement's; None: a record naming none)."""
    return Record("referral", _of(network, attributes))


def note(classification: str, network: str | None = TEST_NETWORK, **attributes: str) -> Record:
    return Record("note", _of(network, {"classification": classification, **attributes}))


def statistics(network: str | None = TEST_NETWORK) -> Record:
    return Record("statistics", _of(network, {}))


def shipped() -> LoadResult:
    return load_agreements(POLICIES)


def shipped_examples() -> LoadResult:
    return load_agreements(EXAMPLES)
