"""The compiled index: the reference's answers, each rule found by its keys; bounded memos."""

import itertools
import random
from datetime import date
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from policy_factories import (
    IN_FORCE,
    agreement_from,
    caller,
    minimal_document,
    note,
    referral,
    shipped,
    shipped_examples,
)
from policy_reference import Outcome, reference_decide
from policy_strategies import agreement_documents, random_requests

from app.policy import Agreement, Caller, Decision, PolicySet, decide
from app.policy.index import DECISION_MEMO_SIZE, Memo, audience_matches
from app.policy.vocabulary import RecordKind


def outcome(decision: Decision) -> Outcome:
    return Outcome(
        decision.permit,
        decision.view,
        decision.rule_ids,
        decision.agreement_id,
        decision.reason_code,
    )


@settings(
    max_examples=100,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    documents=st.lists(
        st.sampled_from(["n1", "n2", "n3"]), min_size=1, max_size=3, unique=True
    ).flatmap(lambda ids: st.tuples(*(agreement_documents(i) for i in ids))),
    seed=st.integers(0, 2**32 - 1),
)
def test_index_matches_reference_with_and_without_interned_decisions(
    documents: tuple[dict[str, Any], ...], seed: int
) -> None:
    agreements = [agreement_from(d) for d in documents]
    interning = PolicySet.of(agreements)
    fresh = PolicySet.of(agreements)
    requests = random_requests(random.Random(seed), agreements, 150)  # noqa: S311 — test data
    for who, purpose, record, view, now in requests * 2:  # the second round reuses decisions
        fresh.index.clear_caches()
        decision = decide(fresh, who, purpose, record, view, now=now)
        assert outcome(decision) == reference_decide(agreements, who, purpose, record, view, now)
        assert decide(interning, who, purpose, record, view, now=now) == decision


class TestRequestedNoteView:
    def test_classification_is_checked_against_the_view_asked_for(self) -> None:
        """A permit for a wider notes view does not show a note the narrower view leaves out."""
        document = minimal_document(
            views={
                "notes.shared": {"notes": {"classification": ["shared"]}},
                "notes.case": {"notes": {"classification": ["shared", "restricted"]}},
            },
            rules=[
                {
                    "id": "case-notes",
                    "to": {"agencies": ["agency-a"]},
                    "view": "notes.case",
                    "purposes": ["assessment"],
                    "legal_basis": "public_task",
                    "retention": "P1Y",
                }
            ],
        )
        policy_set = PolicySet.of([agreement_from(document)])
        who = caller("agency-a", "education")
        restricted = note("restricted")
        wide = decide(policy_set, who, "assessment", restricted, "notes.case", now=IN_FORCE)
        narrow = decide(policy_set, who, "assessment", restricted, "notes.shared", now=IN_FORCE)
        shared = decide(policy_set, who, "assessment", note("shared"), "notes.shared", now=IN_FORCE)
        assert wide.permit and wide.view == "notes.case"
        assert not narrow.permit and narrow.reason_code == "no_rule"
        assert shared.permit and shared.view == "notes.shared"


class TestAnswersFollowTheRequest:
    def test_the_day_decides_which_agreements_are_in_force(self) -> None:
        policy_set = PolicySet.of([agreement_from(minimal_document())])
        who = caller("agency-a", "education")
        before = decide(policy_set, who, "assessment", referral(), now=IN_FORCE)
        after = decide(policy_set, who, "assessment", referral(), now=date(2027, 1, 1))
        assert before.permit
        assert after.reason_code == "no_agreement"

    def test_the_attributes_rules_look_at_decide(self) -> None:
        rules = [
            {
                "id": "with-consent",
                "to": {"agencies": ["agency-a"]},
                "view": "referral.case",
                "purposes": ["assessment"],
                "when": {"consent": ["given"]},
                "legal_basis": "public_task",
                "retention": "P1Y",
            }
        ]
        policy_set = PolicySet.of([agreement_from(minimal_document(rules=rules))])
        who = caller("agency-a", "education")
        given_ = decide(policy_set, who, "assessment", referral(consent="given"), now=IN_FORCE)
        refused = decide(policy_set, who, "assessment", referral(consent="refused"), now=IN_FORCE)
        missing = decide(policy_set, who, "assessment", referral(), now=IN_FORCE)
        assert given_.permit
        assert not refused.permit and not missing.permit


class TestMemo:
    def test_memo_keeps_at_most_two_generations(self) -> None:
        memo: Memo[int, str] = Memo(4)
        for key in range(100):
            memo.put(key, str(key))
            assert len(memo) <= 8
        assert memo.get(99) == "99"
        assert memo.get(0) is None

    def test_memo_promotes_what_the_older_generation_still_holds(self) -> None:
        memo: Memo[int, str] = Memo(2)
        memo.put(1, "1")
        memo.put(2, "2")
        memo.put(3, "3")  # 1 and 2 move to the older generation
        assert memo.get(1) == "1"  # and 1 comes back to the newer one
        memo.put(4, "4")  # the newer generation, {3, 1}, is full: it becomes the older one
        assert memo.get(1) == "1"
        assert memo.get(2) is None

    def test_interned_decisions_stay_bounded(self) -> None:
        """Agencies, purposes and view names come from callers: interning them is capped."""
        policy_set = PolicySet.of([agreement_from(minimal_document())])
        index = policy_set.index
        for i in range(6_000):
            stranger = caller(f"agency-{i}", "education")
            decide(policy_set, stranger, "assessment", referral(), now=IN_FORCE)
            member = caller("agency-a", "education")
            decide(policy_set, member, f"purpose-{i}", referral(), now=IN_FORCE)
            decide(policy_set, member, "assessment", note("x"), f"notes.v{i}", now=IN_FORCE)
        assert len(index.decisions) <= 2 * DECISION_MEMO_SIZE


def _permit(rule_id: str, view: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "to": {"agencies": ["agency-a"]},
        "view": view,
        "purposes": ["assessment"],
        "legal_basis": "public_task",
        "retention": "P1Y",
    }


class TestCitations:
    def test_a_blocked_grant_cites_the_first_deny_that_blocks_it(self) -> None:
        """An earlier deny that covers none of the granted fields is not the one cited."""
        document = minimal_document(
            rules=[_permit("case-to-a", "referral.case")],
            deny=[
                {"id": "no-phone", "to": {"sectors": ["education"]}, "view": ["subject.phone"]},
                {"id": "no-narrative", "to": {"sectors": ["education"]}, "view": ["narrative"]},
            ],
        )
        agreement = agreement_from(document)
        policy_set = PolicySet.of([agreement])
        who = caller("agency-a", "education")
        decision = decide(policy_set, who, "assessment", referral(), now=IN_FORCE)
        expected = reference_decide([agreement], who, "assessment", referral(), None, IN_FORCE)
        assert outcome(decision) == expected
        assert decision.reason_code == "denied_by_rule"
        assert decision.rule_ids == ("no-narrative",)

    def test_rules_granting_a_requested_view_are_cited_in_declaration_order(self) -> None:
        document = minimal_document(
            rules=[
                _permit("summary-to-a", "referral.summary"),
                _permit("case-to-a", "referral.case"),
            ]
        )
        agreement = agreement_from(document)
        policy_set = PolicySet.of([agreement])
        who = caller("agency-a", "education")
        asked = decide(policy_set, who, "assessment", referral(), "referral.summary", now=IN_FORCE)
        best = decide(policy_set, who, "assessment", referral(), now=IN_FORCE)
        expected = reference_decide(
            [agreement], who, "assessment", referral(), "referral.summary", IN_FORCE
        )
        assert outcome(asked) == expected
        assert asked.rule_ids == ("summary-to-a", "case-to-a")
        assert best.view == "referral.case" and best.rule_ids == ("case-to-a",)


class TestBuckets:
    def test_a_callers_mask_holds_exactly_the_permits_naming_them(self) -> None:
        """The masks give what a scan of every rule of every agreement would, and no more."""
        for policy_set in (shipped().policy_set, shipped_examples().policy_set):
            index = policy_set.index
            for agreement in policy_set:
                for who, purpose, kind in itertools.product(
                    _callers(agreement), [*agreement.purposes, "emergency"], KINDS
                ):
                    scope = index.scope(who.agency_id)
                    bucket = scope.bucket(purpose, kind)
                    mask = bucket.matching(who, index.day(IN_FORCE)) >> scope.shift
                    found = {
                        (e.permit.agreement_id, e.permit.id)
                        for i, e in enumerate(bucket.permits)
                        if mask >> i & 1
                    }
                    assert found == _scanned(policy_set, who, purpose, kind), (who, purpose)


KINDS: tuple[RecordKind, ...] = ("referral", "note", "statistics")


def _callers(agreement: Agreement) -> list[Caller]:
    roles = [(), ("coordinator",), ("caseworker", "referrer"), ("partner_reader",)]
    relations = [(), ("assigned",), ("owner", "referrer")]
    return [
        caller(party, sector, role, relation)
        for party in agreement.parties[:6]
        for sector in ("police", "health", "civil_society")
        for role in roles
        for relation in relations
    ]


def _scanned(policy_set: PolicySet, who: Caller, purpose: str, kind: str) -> set[tuple[str, str]]:
    return {
        (agreement.id, permit.id)
        for agreement in policy_set
        if agreement.in_force(IN_FORCE) and who.agency_id in agreement.party_set
        for permit in agreement.all_permits
        if permit.view.kind == kind
        and purpose in permit.purposes
        and not permit.audience.is_empty
        and audience_matches(permit.audience, who)
    }
