"""Explain a decision: every rule considered, whether it matched and the first reason why not."""

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from app.policy.build import NETWORK_CONDITION
from app.policy.decision import Caller, Decision, Record
from app.policy.engine import decide
from app.policy.matching import (
    agreement_failure,
    audience_failure,
    conditions_failure,
    listing,
)
from app.policy.model import Agreement, Conditions, Deny, Permit, View
from app.policy.policy_set import PolicySet

Status = Literal["matched", "not_matched"]


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule's verdict; a matched permit may still be blocked by a deny."""

    agreement_id: str
    rule_id: str
    effect: Literal["permit", "deny"]
    view: str
    status: Status
    reason: str | None = None
    blocked_by: str | None = None
    selected: bool = False
    requires_training: frozenset[str] = frozenset()  # a permit's courses (agreement's and rule's)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agreement": self.agreement_id,
            "rule": self.rule_id,
            "effect": self.effect,
            "view": self.view,
            "status": self.status,
            "reason": self.reason,
            "blocked_by": self.blocked_by,
            "selected": self.selected,
            "requires_training": sorted(self.requires_training),
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    purpose: str
    view: str | None
    now: date
    rules: tuple[RuleTrace, ...]
    winning_deny: str | None
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "view": self.view,
            "now": self.now.isoformat(),
            "rules": [trace.to_dict() for trace in self.rules],
            "winning_deny": self.winning_deny,
            "decision": self.decision.to_dict(),
        }


def explain(
    policy_set: PolicySet,
    caller: Caller,
    purpose: str,
    record: Record,
    view: str | None = None,
    *,
    now: date,
) -> Explanation:
    decision = decide(policy_set, caller, purpose, record, view, now=now)
    deny_traces: list[RuleTrace] = []
    applicable: list[Deny] = []
    for agreement in policy_set:
        for deny in agreement.denies:
            failure = _deny_failure(agreement, deny, caller, purpose, record, now)
            if failure is None:
                applicable.append(deny)
            won = decision.reason_code == "denied_by_rule" and (
                decision.agreement_id,
                decision.rule_ids,
            ) == (agreement.id, (deny.id,))
            status: Status = "not_matched" if failure else "matched"
            deny_traces.append(
                RuleTrace(
                    agreement.id, deny.id, "deny", deny.view_label, status, failure, None, won
                )
            )
    permit_traces: list[RuleTrace] = []
    for agreement in policy_set:
        for permit in agreement.all_permits:
            failure = _permit_failure(agreement, permit, caller, purpose, record, view, now)
            shown = permit.view if view is None else agreement.views.get(view, permit.view)
            blocked = None if failure else _blocker(applicable, shown, record)
            selected = (
                decision.permit
                and decision.agreement_id == agreement.id
                and permit.id in decision.rule_ids
            )
            status = "not_matched" if failure else "matched"
            permit_traces.append(
                RuleTrace(
                    agreement.id,
                    permit.id,
                    "permit",
                    permit.view.name,
                    status,
                    failure,
                    blocked,
                    selected,
                    permit.requires_training,
                )
            )
    winner = decision.rule_ids[0] if decision.reason_code == "denied_by_rule" else None
    return Explanation(purpose, view, now, tuple(permit_traces + deny_traces), winner, decision)


def _permit_failure(
    agreement: Agreement,
    permit: Permit,
    caller: Caller,
    purpose: str,
    record: Record,
    view: str | None,
    now: date,
) -> str | None:
    failure = agreement_failure(agreement, caller, now)
    failure = failure or _network_failure(agreement, permit.when, record, missing_holds=False)
    if failure:
        return failure
    if permit.view.kind != record.kind:
        return f"view {permit.view.name} does not apply to {record.kind} records"
    if purpose not in permit.purposes:
        return f"purpose {purpose} not in rule purposes {listing(permit.purposes)}"
    failure = audience_failure(permit.audience, caller, empty_matches=False)
    failure = failure or conditions_failure(_written(permit.when), record.attributes, missing_holds=False)
    if failure:
        return failure
    shown = permit.view if view is None else agreement.views.get(view)
    if shown is None or shown.kind != record.kind:
        return f"agreement {agreement.id} has no {record.kind} view {view}"
    if not permit.view.items >= shown.items:
        missing = listing(shown.items - permit.view.items)
        return f"view {permit.view.name} does not cover {shown.name} (lacks {missing})"
    classification = record.attributes.get("classification")
    if record.kind == "note" and classification not in shown.items:
        return f"note classification {classification} not in {shown.name} {listing(shown.items)}"
    untrained = permit.requires_training - caller.trained
    if untrained:
        verb = "is" if len(untrained) == 1 else "are"
        return f"training required: {', '.join(sorted(untrained))} {verb} missing or expired"
    return None


def _deny_failure(
    agreement: Agreement, deny: Deny, caller: Caller, purpose: str, record: Record, now: date
) -> str | None:
    failure = agreement_failure(agreement, caller, now)
    failure = failure or _network_failure(agreement, deny.when, record, missing_holds=True)
    if failure:
        return failure
    if deny.kind != record.kind:
        return f"deny is about {deny.kind} records, not {record.kind}"
    if deny.purposes is not None and purpose not in deny.purposes:
        return f"purpose {purpose} not in deny purposes {listing(deny.purposes)}"
    failure = audience_failure(deny.audience, caller, empty_matches=True)
    failure = failure or conditions_failure(_written(deny.when), record.attributes, missing_holds=True)
    if failure:
        return failure
    classification = record.attributes.get("classification")
    if record.kind == "note" and classification not in deny.items:
        return f"note classification {classification} not in {listing(deny.items)}"
    return None


def _network_failure(
    agreement: Agreement, when: Conditions, record: Record, *, missing_holds: bool
) -> str | None:
    """An agreement decides only records of its own network(s): the rule's implicit condition."""
    networks = dict(when).get(NETWORK_CONDITION)
    if networks is None:
        return None  # an agreement built in code, with no network
    decides = f"{agreement.id} decides {_networks(networks)}"
    network = record.attributes.get(NETWORK_CONDITION)
    if network is None:
        return None if missing_holds else f"record names no network; {decides}"
    if network not in networks:
        return f"record is of network {network}; {decides}"
    return None


def _networks(networks: frozenset[str]) -> str:
    if len(networks) == 1:
        return f"network {next(iter(networks))}"
    return f"networks {listing(networks)}"


def _written(when: Conditions) -> Conditions:
    """The rule's own conditions; the network one is explained with the agreement."""
    return tuple((key, values) for key, values in when if key != NETWORK_CONDITION)


def _blocker(applicable: list[Deny], shown: View, record: Record) -> str | None:
    """The first applicable deny in (agreement, declaration) order, as decide() cites it."""
    classification = record.attributes.get("classification")
    for deny in applicable:
        if record.kind == "note":
            if classification in deny.items:
                return deny.id
        elif not deny.items.isdisjoint(shown.items):
            return deny.id
    return None
