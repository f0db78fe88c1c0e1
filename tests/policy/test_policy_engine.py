"""decide(): semantics, and thousands of generated cases against a naive reference."""

import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from policy_factories import (
    DEMO,
    IN_FORCE,
    agreement_from,
    caller,
    minimal_document,
    note,
    policy_set_of,
    referral,
    shipped,
    shipped_examples,
    statistics,
)
from policy_reference import Outcome, reference_decide
from policy_strategies import agreement_documents, generated_requests

from app.policy import Caller, Decision, PolicySet, Record, decide, explain, find_view, purposes_for
from app.policy.vocabulary import RECORD_VALUES, ROLES, SECTORS


def outcome(decision: Decision) -> Outcome:
    return Outcome(
        decision.permit,
        decision.view,
        decision.rule_ids,
        decision.agreement_id,
        decision.reason_code,
    )


def assert_matches_reference(
    policy_set: PolicySet, who: Caller, purpose: str, record: Record, view: str | None, now: date
) -> Decision:
    decision = decide(policy_set, who, purpose, record, view, now=now)
    expected = reference_decide(list(policy_set), who, purpose, record, view, now)
    assert outcome(decision) == expected, (who, purpose, record, view, now)
    assert_isolated(policy_set, decision, record)
    return decision


def assert_isolated(policy_set: PolicySet, decision: Decision, record: Record) -> None:
    """A permit comes from an agreement of the record's network, never from another's."""
    if decision.permit and decision.agreement_id is not None:
        agreement = policy_set.get(decision.agreement_id)
        assert agreement is not None
        assert not agreement.networks or record.attributes.get("network") in agreement.networks


@pytest.fixture(scope="module")
def demo() -> PolicySet:
    return shipped().policy_set


class TestDefaults:
    def test_default_deny_without_any_rule(self) -> None:
        policy_set = policy_set_of(minimal_document())
        decision = decide(
            policy_set, caller("agency-b", "education"), "assessment", referral(), now=IN_FORCE
        )
        assert not decision.permit
        assert decision.reason_code == "no_rule"
        assert decision.reason.startswith("no rule grants")

    def test_permit_names_agreement_rule_and_obligations(self) -> None:
        policy_set = policy_set_of(minimal_document())
        decision = decide(
            policy_set, caller("agency-a", "education"), "assessment", referral(), now=IN_FORCE
        )
        agreement = policy_set.get("test-net")
        assert agreement is not None
        assert decision.permit and decision.view == "referral.case"
        assert decision.rule_ids == ("case-to-a",)
        assert decision.agreement_hash == agreement.content_hash
        assert decision.agreement_version == 1
        assert decision.legal_basis == "public_task"
        assert str(decision.retention) == "P1Y"
        assert "narrative" in decision.fields and "subject.age_band" in decision.fields

    def test_undeclared_purpose(self) -> None:
        policy_set = policy_set_of(minimal_document())
        decision = decide(
            policy_set, caller("agency-a", "education"), "marketing", referral(), now=IN_FORCE
        )
        assert decision.reason_code == "purpose_not_declared"
        assert decision.reason.startswith("purpose not declared")

    def test_caller_not_party(self) -> None:
        policy_set = policy_set_of(minimal_document())
        decision = decide(
            policy_set, caller("stranger", "education"), "assessment", referral(), now=IN_FORCE
        )
        assert decision.reason_code == "no_agreement"
        assert decision.reason.startswith("no agreement in force")


class TestInForce:
    @pytest.mark.parametrize(
        ("now", "permit"),
        [
            (date(2025, 12, 31), False),
            (date(2026, 1, 1), True),
            (date(2026, 12, 31), True),
            (date(2027, 1, 1), False),
            (date(2030, 1, 1), False),
        ],
    )
    def test_only_between_effective_from_and_review_by(self, now: date, permit: bool) -> None:
        policy_set = policy_set_of(minimal_document())
        decision = decide(
            policy_set, caller("agency-a", "education"), "assessment", referral(), now=now
        )
        assert decision.permit is permit
        if not permit:
            assert decision.reason_code == "no_agreement"

    def test_expired_agreement_grants_nothing_even_emergency(self, demo: PolicySet) -> None:
        who = caller("city-municipality", "local_government", ("coordinator", "caseworker"))
        expired = date(2027, 6, 30)
        for purpose in ("safeguarding_assessment", "emergency", "statistics"):
            assert not decide(demo, who, purpose, referral(DEMO), now=expired).permit
        assert purposes_for(demo, who, expired) == []


class TestDenyBeatsPermit:
    def document(self, deny: list[dict[str, Any]]) -> dict[str, Any]:
        return minimal_document(
            rules=[
                {
                    "id": "case-to-police",
                    "to": {"sectors": ["police"]},
                    "view": "referral.case",
                    "purposes": ["assessment"],
                    "legal_basis": "public_task",
                    "retention": "P1Y",
                },
                {
                    "id": "shared-notes",
                    "to": {"sectors": ["police", "education"]},
                    "view": "notes.shared",
                    "purposes": ["assessment"],
                    "legal_basis": "public_task",
                    "retention": "P1Y",
                },
            ],
            deny=deny,
        )

    def test_deny_on_a_field_cancels_views_holding_it(self) -> None:
        policy_set = policy_set_of(
            self.document(
                [{"id": "no-narrative", "to": {"sectors": ["police"]}, "view": ["narrative"]}]
            )
        )
        police = caller("police-x", "police")
        decision = decide(policy_set, police, "assessment", referral(), now=IN_FORCE)
        assert not decision.permit
        assert decision.rule_ids == ("no-narrative",)
        assert decision.reason == "denied by rule no-narrative"
        # A view without the denied field is still disclosed.
        narrower = decide(
            policy_set, police, "assessment", referral(), "referral.summary", now=IN_FORCE
        )
        assert narrower.permit and narrower.view == "referral.summary"

    def test_notes_deny_wins_over_a_matching_permit(self) -> None:
        policy_set = policy_set_of(
            self.document(
                [
                    {
                        "id": "no-shared",
                        "to": {"sectors": ["police"]},
                        "view": {"notes": {"classification": ["shared"]}},
                    }
                ]
            )
        )
        police = caller("police-x", "police")
        school = caller("agency-b", "education")
        assert decide(policy_set, police, "assessment", note("shared"), now=IN_FORCE).rule_ids == (
            "no-shared",
        )
        assert decide(policy_set, school, "assessment", note("shared"), now=IN_FORCE).permit

    def test_deny_condition_on_missing_attribute_fails_closed(self) -> None:
        policy_set = policy_set_of(
            self.document(
                [
                    {
                        "id": "no-case-without-consent",
                        "view": "referral.case",
                        "when": {"consent": ["refused"]},
                    }
                ]
            )
        )
        police = caller("police-x", "police")
        assert not decide(policy_set, police, "assessment", referral(), now=IN_FORCE).permit
        assert decide(
            policy_set, police, "assessment", referral(consent="given"), now=IN_FORCE
        ).permit

    def test_deny_in_one_agreement_beats_permit_in_another(self) -> None:
        granting = self.document([])
        # A second agreement of the same network: its deny decides the same records.
        denying = minimal_document(
            agreement="other-net",
            network="test-net",
            rules=[],
            deny=[{"id": "police-nothing", "to": {"sectors": ["police"]}, "view": "referral.case"}],
        )
        policy_set = policy_set_of(granting, denying)
        decision = decide(
            policy_set, caller("police-x", "police"), "assessment", referral(), now=IN_FORCE
        )
        assert not decision.permit
        assert (decision.agreement_id, decision.rule_ids) == ("other-net", ("police-nothing",))


class TestViews:
    def test_most_detailed_view_is_chosen(self, demo: PolicySet) -> None:
        worker = caller(
            "city-social-services", "social_services", ("caseworker",), ("assigned", "referrer"),
            ("data-protection-basics",),
        )
        record = referral(DEMO, consent="given", status="assigned")
        decision = decide(demo, worker, "intervention_planning", record, now=IN_FORCE)
        assert decision.view == "referral.contact"
        assert decision.rule_ids == ("assigned-caseworker-contact",)

    def test_incomparable_views_pick_the_larger_not_a_union(self) -> None:
        document = minimal_document(
            views={
                "referral.left": ["id", "concerns", "narrative"],
                "referral.right": ["id", "status"],
            },
            rules=[
                {
                    "id": rule,
                    "to": {"sectors": ["education"]},
                    "view": view,
                    "purposes": ["assessment"],
                    "legal_basis": "public_task",
                    "retention": "P1Y",
                }
                for rule, view in (("left", "referral.left"), ("right", "referral.right"))
            ],
        )
        decision = decide(
            policy_set_of(document),
            caller("agency-b", "education"),
            "assessment",
            referral(),
            now=IN_FORCE,
        )
        assert decision.view == "referral.left"
        assert decision.fields == frozenset({"id", "concerns", "narrative"})

    def test_explicit_view_is_projected_from_a_covering_grant(self, demo: PolicySet) -> None:
        owner = caller("school-north", "education", ("referrer",), ("owner",))
        decision = decide(
            demo, owner, "safeguarding_assessment", referral(DEMO), "referral.summary", now=IN_FORCE
        )
        assert decision.permit and decision.view == "referral.summary"
        assert decision.fields == find_view(demo, "demo-city", "referral.summary").items  # type: ignore[union-attr]

    def test_explicit_view_not_covered_is_denied(self, demo: PolicySet) -> None:
        referrer = caller("school-north", "education", ("referrer",), ("referrer",))
        decision = decide(
            demo, referrer, "safeguarding_assessment", referral(DEMO), "referral.case", now=IN_FORCE
        )
        assert not decision.permit and decision.reason_code == "no_rule"

    def test_unknown_or_mismatched_view(self, demo: PolicySet) -> None:
        who = caller("city-municipality", "local_government", ("coordinator",))
        unknown = decide(
            demo, who, "safeguarding_assessment", referral(DEMO), "referral.nope", now=IN_FORCE
        )
        assert unknown.reason_code == "unknown_view"
        wrong_kind = decide(
            demo, who, "safeguarding_assessment", note("shared", DEMO), "referral.case", now=IN_FORCE
        )
        assert wrong_kind.reason_code == "unknown_view"
        assert "does not apply to note records" in wrong_kind.reason

    def test_statistics_carry_min_cell(self, demo: PolicySet) -> None:
        national = caller(
            "national-prevention-authority", "national_authority", ("statistics_reader",)
        )
        decision = decide(demo, national, "statistics", statistics(DEMO), now=IN_FORCE)
        assert decision.permit and decision.min_cell == 5
        assert "district" in decision.fields

    def test_emergency_window(self, demo: PolicySet) -> None:
        worker = caller("school-south", "education", ("caseworker",), ("assigned",))
        decision = decide(demo, worker, "emergency", referral(DEMO), now=IN_FORCE)
        assert decision.permit and decision.rule_ids == ("emergency",)
        assert decision.emergency_window is not None and decision.emergency_window.iso() == "PT3H"
        assert decision.legal_basis == "vital_interests"

    def test_emergency_is_for_parties_to_the_case_or_the_coordinator(self, demo: PolicySet) -> None:
        """Issue 11, finding 6: an agency with no relation to the referral may not break the glass."""
        stranger = caller("school-south", "education", ("caseworker",))
        assert not decide(demo, stranger, "emergency", referral(DEMO), now=IN_FORCE).permit
        focal = caller("city-municipality", "local_government", ("coordinator",), ("coordinator",))
        assert decide(demo, focal, "emergency", referral(DEMO), now=IN_FORCE).permit
        reader = caller("youth-ngo-bridges", "youth_work", ("partner_reader",), ("assigned",))
        assert not decide(demo, reader, "emergency", referral(DEMO), now=IN_FORCE).permit


class TestPurposesFor:
    def test_lists_purposes_open_to_the_caller(self, demo: PolicySet) -> None:
        partner = caller("youth-ngo-bridges", "youth_work", ("partner_reader",))
        assert purposes_for(demo, partner, IN_FORCE) == ["service_provision"]
        coordinator = caller("city-municipality", "local_government", ("coordinator",), ("coordinator",))
        assert purposes_for(demo, coordinator, IN_FORCE) == [
            "case_conference",
            "emergency",
            "intervention_planning",
            "safeguarding_assessment",
            "statistics",
            "subject_access",
        ]


# --- table-driven: every combination of a grid over the shipped agreements -------------------

# Records without a network: the grid gives each one its agreement's network, another
# network's, and none.
_RECORDS = [
    referral(None),
    referral(None, consent="given", status="assigned", risk_level="high"),
    referral(None, consent="given", status="in_intervention", risk_level="low"),
    referral(None, consent="refused", status="assigned", risk_level="critical"),
    referral(None, consent="not_required", status="closed"),
    referral(None, consent="given", status="triaged"),
    note("shared", None),
    note("health", None, consent="given"),
    note("restricted", None, consent="withdrawn"),
    statistics(None),
]
_ELSEWHERE = "elsewhere"  # a network no agreement decides


def _of_networks(records: list[Record], networks: list[str | None]) -> list[Record]:
    """Each record of its agreement's network(s); the first of them also of the others."""
    own, *others = networks
    found = [Record(r.kind, {**r.attributes, "network": own}) if own else r for r in records]
    for network in others:
        found += [
            Record(r.kind, {**r.attributes, "network": network}) if network else r
            for r in records[:2] + records[6:]
        ]
    return found


def _grid(policy_sets: list[PolicySet]) -> list[tuple[PolicySet, Caller, str, Record, str | None]]:
    cases = []
    for policy_set in policy_sets:
        for agreement in policy_set:
            sector_of = _guess_sectors(agreement.parties)
            purposes = [*agreement.purposes, "emergency", "unknown"]
            views: list[str | None] = [None, *list(agreement.views)[:4]]
            foreign = sorted(set(policy_set.networks) - agreement.networks)[:1]
            records = _of_networks(
                _RECORDS, [*sorted(agreement.networks), *foreign, _ELSEWHERE, None]
            )
            for agency, roles, relations in itertools.product(
                agreement.parties,
                [
                    (),
                    ("coordinator",),
                    ("caseworker",),
                    ("partner_reader",),
                    ("statistics_reader",),
                ],
                [(), ("assigned",), ("owner", "referrer"), ("referrer",)],
            ):
                who = caller(agency, sector_of[agency], roles, relations)
                for purpose, record, view in itertools.product(purposes, records, views[:2]):
                    cases.append((policy_set, who, purpose, record, view))
    return cases


def _guess_sectors(parties: tuple[str, ...]) -> dict[str, str]:
    hints = {
        "police": "police",
        "health": "health",
        "school": "education",
        "doe": "education",
        "cuny": "education",
        "education": "education",
        "social": "social_services",
        "children": "social_services",
        "acs": "social_services",
        "hra": "social_services",
        "youth": "youth_work",
        "dycd": "youth_work",
        "religious": "religious_community",
        "interfaith": "religious_community",
        "islamic": "religious_community",
        "orthodox": "religious_community",
        "muslim": "religious_community",
        "ngo": "civil_society",
        "auditor": "civil_society",
        "partners": "civil_society",
        "civil": "civil_society",
        "national": "national_authority",
        "nctc": "national_authority",
        "commissioner": "national_authority",
        "nypd": "police",
        "probation": "police",
    }
    return {
        party: next((sector for hint, sector in hints.items() if hint in party), "local_government")
        for party in parties
    }


def test_grid_over_shipped_agreements_matches_reference() -> None:
    policy_sets = [shipped().policy_set, shipped_examples().policy_set]
    cases = _grid(policy_sets)
    assert len(cases) > 10_000
    permits = 0
    for policy_set, who, purpose, record, view in cases:
        permits += assert_matches_reference(policy_set, who, purpose, record, view, IN_FORCE).permit
    assert permits > 500


# --- hypothesis: random callers/records against the shipped agreements -----------------------

_SHIPPED = [shipped().policy_set, shipped_examples().policy_set]


@st.composite
def requests_for(
    draw: st.DrawFn, policy_set: PolicySet
) -> tuple[Caller, str, Record, str | None, date]:
    agreements = list(policy_set)
    agreement = draw(st.sampled_from(agreements))
    agency = draw(st.sampled_from([*agreement.parties, "outsider"]))
    who = Caller(
        "client",
        agency,
        draw(st.sampled_from(sorted(SECTORS))),
        frozenset(draw(st.sets(st.sampled_from(sorted(ROLES)), max_size=3))),
        frozenset(draw(st.sets(st.sampled_from(["owner", "referrer", "assigned"]), max_size=3))),
    )
    purpose = draw(st.sampled_from([*agreement.purposes, "emergency", "nope"]))
    kind = draw(st.sampled_from(["referral", "note", "statistics"]))
    attributes = {
        key: value
        for key, values in RECORD_VALUES.items()
        if (value := draw(st.sampled_from([None, *sorted(values)]))) is not None
    }
    # Mostly the agreement's own network; now and then another one, a stranger's, or none.
    own = sorted(agreement.networks)
    network = draw(
        st.sampled_from([*own, *own, *own, *sorted(policy_set.networks), _ELSEWHERE, None])
    )
    if network is not None:
        attributes["network"] = network
    view = draw(st.sampled_from([None, None, *agreement.views, "referral.nope"]))
    now = agreement.effective_from + timedelta(days=draw(st.integers(-30, 800)))
    return who, purpose, Record(kind, attributes), view, now  # type: ignore[arg-type]


# Shrinking large generated policies takes minutes; a failure prints the unshrunk example.
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@settings(
    max_examples=2000,
    deadline=None,
    phases=_NO_SHRINK,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_shipped_agreements_match_reference(data: st.DataObject) -> None:
    policy_set = data.draw(st.sampled_from(_SHIPPED))
    who, purpose, record, view, now = data.draw(requests_for(policy_set))
    assert_matches_reference(policy_set, who, purpose, record, view, now)


# --- hypothesis: random agreements (several at once) against the reference -------------------


@settings(
    max_examples=150,
    deadline=None,
    phases=_NO_SHRINK,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    documents=st.lists(
        st.sampled_from(["n1", "n2", "n3"]), min_size=1, max_size=3, unique=True
    ).flatmap(lambda ids: st.tuples(*(agreement_documents(i) for i in ids))),
    data=st.data(),
)
def test_generated_agreements_match_reference(
    documents: tuple[dict[str, Any], ...], data: st.DataObject
) -> None:
    policy_set = PolicySet.of(agreement_from(d) for d in documents)
    networks = sorted({n for a in policy_set for n in a.networks})
    requests = data.draw(st.lists(generated_requests(networks), min_size=20, max_size=20))
    for who, purpose, record, view, now in requests:
        decision = assert_matches_reference(policy_set, who, purpose, record, view, now)
        explained = explain(policy_set, who, purpose, record, view, now=now)
        assert explained.decision == decision
        selected = {(t.agreement_id, t.rule_id) for t in explained.rules if t.selected}
        if decision.permit:
            assert selected == {(decision.agreement_id, r) for r in decision.rule_ids}
            assert all(
                t.status == "matched" and t.blocked_by is None
                for t in explained.rules
                if t.selected and t.effect == "permit"
            )
        else:
            assert not any(t.effect == "permit" for t in explained.rules if t.selected)


def test_caches_do_not_change_decisions() -> None:
    """Interned decisions are pure: forgetting them before each call gives the same answers."""
    cached = shipped().policy_set
    uncached = shipped().policy_set
    for _, who, purpose, record, view in _grid([cached])[::7]:
        first = decide(cached, who, purpose, record, view, now=IN_FORCE)
        again = decide(cached, who, purpose, record, view, now=IN_FORCE)
        uncached.index.clear_caches()
        fresh = decide(uncached, who, purpose, record, view, now=IN_FORCE)
        assert first == again == fresh


class TestTraining:
    """Courses required of recipients: a permit needing one the caller lacks grants nothing."""

    RULES: list[dict[str, Any]] = [
        {"id": "case-to-a", "to": {"agencies": ["agency-a"]}, "view": "referral.case", "purposes": ["assessment"],
         "legal_basis": "public_task", "retention": "P1Y", "requires": {"training": ["ethics"]}},
        {"id": "summary-to-a", "to": {"agencies": ["agency-a"]}, "view": "referral.summary",
         "purposes": ["assessment"], "legal_basis": "public_task", "retention": "P1Y"},
    ]

    def test_untrained_gets_the_lesser_view_and_is_refused_the_one_needing_training(self) -> None:
        policy_set = policy_set_of(minimal_document(rules=self.RULES))
        untrained = caller("agency-a", "health")
        lesser = decide(policy_set, untrained, "assessment", referral(), now=IN_FORCE)
        assert lesser.permit and lesser.view == "referral.summary" and lesser.rule_ids == ("summary-to-a",)
        refused = decide(policy_set, untrained, "assessment", referral(), "referral.case", now=IN_FORCE)
        assert not refused.permit and refused.reason_code == "training_required"
        assert refused.reason == (
            "training required: ethics (rule case-to-a of agreement test-net) is missing or expired")
        assert refused.rule_ids == ("case-to-a",) and refused.view == "referral.case"
        trained = caller("agency-a", "health", trained=("ethics",))
        full = decide(policy_set, trained, "assessment", referral(), now=IN_FORCE)
        assert full.permit and full.view == "referral.case"

    def test_agreement_requirement_applies_to_every_permit_and_emergency(self) -> None:
        document = minimal_document(
            rules=self.RULES[1:], requires={"training": ["basics"]},
            emergency={"roles": ["caseworker"], "relations": ["owner"], "view": "referral.case"},
        )
        policy_set = policy_set_of(document)
        agreement = policy_set.get("test-net")
        assert agreement is not None
        assert {p.id: p.requires_training for p in agreement.all_permits} == {
            "summary-to-a": frozenset({"basics"}), "emergency": frozenset({"basics"})}
        assert policy_set.index.required_courses == frozenset({"basics"})
        worker = caller("agency-a", "health", ("caseworker",), ("owner",))
        refused = decide(policy_set, worker, "emergency", referral(), now=IN_FORCE)
        assert refused.reason_code == "training_required" and "basics" in refused.reason
        both = decide(policy_set, caller("agency-a", "health", trained=("basics", "other")), "assessment",
                      referral(), now=IN_FORCE)
        assert both.permit

    def test_a_rule_adds_to_the_agreements_courses_and_every_missing_one_is_named(self) -> None:
        rules = [dict(self.RULES[0], requires={"training": ["ethics", "law"]})]
        policy_set = policy_set_of(minimal_document(rules=rules, requires={"training": ["basics"]}))
        refused = decide(policy_set, caller("agency-a", "health", trained=("law",)), "assessment", referral(),
                         now=IN_FORCE)
        assert refused.reason == ("training required: basics, ethics (rule case-to-a of agreement test-net)"
                                  " are missing or expired")

    def test_a_deny_stands_whatever_the_training(self) -> None:
        deny = [{"id": "no-narrative", "to": {"agencies": ["agency-a"]}, "view": ["narrative"]}]
        policy_set = policy_set_of(minimal_document(rules=self.RULES[:1], deny=deny))
        decision = decide(policy_set, caller("agency-a", "health"), "assessment", referral(), now=IN_FORCE)
        assert decision.reason_code == "denied_by_rule" and decision.rule_ids == ("no-narrative",)

    def test_no_requirement_costs_nothing_in_the_index(self) -> None:
        policy_set = policy_set_of(minimal_document())
        assert policy_set.index.required_courses == frozenset()
        scope = policy_set.index.scope("agency-a")
        assert all(not bucket.needs_training and not bucket.training
                   for by_kind in scope.buckets.values() for bucket in by_kind.values())

    def test_explain_names_the_course_and_why(self) -> None:
        policy_set = policy_set_of(minimal_document(rules=self.RULES))
        explained = explain(policy_set, caller("agency-a", "health"), "assessment", referral(), "referral.case",
                            now=IN_FORCE).to_dict()
        assert explained["decision"]["reason_code"] == "training_required"
        trace = next(r for r in explained["rules"] if r["rule"] == "case-to-a")
        assert trace["requires_training"] == ["ethics"] and trace["status"] == "not_matched"
        assert trace["reason"] == "training required: ethics is missing or expired"
