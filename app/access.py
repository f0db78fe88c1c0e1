"""The one place that decides who may read case data: agreements, purpose, and the fields that leave."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Header

from app.auth.principal import Principal
from app.errors import BadRequest, Forbidden
from app.policy.decision import AttributeValue, Caller, Decision, Record, flag_value
from app.policy.engine import decide, purposes_for
from app.policy.explain import Explanation
from app.policy.model import Agreement
from app.policy.policy_set import PolicySet
from app.policy.reach import Reach, reach
from app.policy.vocabulary import EMERGENCY_PURPOSE, RecordKind
from app.referrals.snapshot import AnyReferral

PURPOSE_PATTERN = r"^[\x20-\x7e]*$"
"""Printable ASCII: whatever the caller states is checked here, before it can reach a log entry.

A purpose is a policy id (``safeguarding_assessment``); one not open to the caller is still a
400 ``purpose-unknown`` refusal, logged with it. A tab or a NUL never gets that far (app.edges),
and this keeps any other unprintable value out of the log's clear ``purpose`` column too.
"""
PURPOSE_MAX, JUSTIFICATION_MAX = 64, 500
PurposeHeader = Annotated[
    str | None,
    Header(alias="X-Purpose", max_length=PURPOSE_MAX, pattern=PURPOSE_PATTERN,
           description="Why you read this case data (required)."),
]
JustificationHeader = Annotated[
    str | None,
    Header(alias="X-Justification", max_length=JUSTIFICATION_MAX, description="Free-text justification."),
]
# Every relation a caller may hold to some record; `coordinator` only ever matches an emergency
# section (`relations: [coordinator]`), so a grant's holder can state the purpose `emergency`.
ALL_RELATIONS = frozenset({"owner", "referrer", "assigned", "coordinator"})


class AccessDenied(Forbidden):
    """No agreement grants the read; carries the decision so the denial can be logged."""

    slug = "access-denied"

    def __init__(
        self, decision: Decision, purpose: str, *, owner_agency: str | None = None,
        subject_id: str | None = None,
    ) -> None:
        lapsed = decision.reason_code in NOT_IN_FORCE_CODES
        told: dict[str, Any] = (
            {"agreement": decision.agreement_id, "agreement_version": decision.agreement_version} if lapsed else {})
        super().__init__(
            f"Not granted for purpose {purpose!r}: {decision.reason}.",
            slug=decision.reason_code.replace("_", "-") if lapsed else None,
            reason=decision.reason,
            rule_ids=list(decision.rule_ids),
            **told,
        )
        self.decision = decision
        self.owner_agency = owner_agency
        self.subject_id = subject_id


@dataclass(frozen=True, slots=True)
class Grant:
    """What a read may return, why, and whether it crosses an agency boundary."""

    decision: Decision
    kind: Literal["access", "disclosure"]

    @property
    def fields(self) -> frozenset[str]:
        return self.decision.fields


class ChangeDenied(Forbidden):
    """A change refused: no agreement in force of the record's network, or not the relation it needs.

    Carries the record's owner and subject so the denial is logged against the person.
    """

    slug = "change-denied"

    def __init__(
        self, detail: str, *, owner_agency: str | None = None, subject_id: str | None = None,
        network: str | None = None, **extensions: Any,
    ) -> None:
        super().__init__(detail, network=network, **extensions)
        self.owner_agency = owner_agency
        self.subject_id = subject_id


def refuse_admin(principal: Principal) -> None:
    """Operators run the service; they never see what it holds."""
    if "admin" in principal.roles:
        raise Forbidden("The admin role never reads or writes case data.", slug="admin-no-case-data")


def caller(principal: Principal, relations: frozenset[str] = frozenset()) -> Caller:
    return Caller(
        client_id=principal.client_id,
        agency_id=principal.agency_id,
        sector=principal.sector,
        roles=principal.roles,
        relations=relations,
        trained=principal.trained,
    )


def require_purpose(
    policies: PolicySet, principal: Principal, purpose: str | None, today: date, *,
    allow_emergency: bool = False, relations: frozenset[str] = ALL_RELATIONS,
) -> str:
    """The stated purpose, if an agreement in force opens it to this caller; else a 400.

    `emergency` is never an ordinary purpose: it reads one referral under an active grant.
    """
    refuse_admin(principal)
    open_to_caller = [
        p for p in purposes_for(policies, caller(principal, relations), today)
        if p != EMERGENCY_PURPOSE or allow_emergency
    ]
    if not purpose:
        raise BadRequest(
            "Every read of case data states its purpose in the X-Purpose header.",
            slug="purpose-required", purposes=open_to_caller,
        )
    if purpose not in open_to_caller:
        for lapse in not_in_force(policies, principal.agency_id, today, purpose=purpose):
            raise Forbidden(f"Purpose {purpose!r} is not open to you: {lapse.reason}.", slug=lapse.slug,
                            purposes=open_to_caller, **lapse.extensions)
        raise BadRequest(
            f"Purpose {purpose!r} is not one open to you.", slug="purpose-unknown",
            purposes=open_to_caller,
        )
    return purpose


# -- agreements that exist but decide nothing today ------------------------------------------

NOT_IN_FORCE_CODES = frozenset({"agreement_expired", "agreement_not_yet_effective"})


@dataclass(frozen=True, slots=True)
class NotInForce:
    """An agreement the caller's agency is a party to that decides nothing today, and why."""

    agreement: Agreement
    reason_code: Literal["agreement_expired", "agreement_not_yet_effective"]

    @property
    def slug(self) -> str:
        return self.reason_code.replace("_", "-")

    @property
    def reason(self) -> str:
        a = self.agreement
        if self.reason_code == "agreement_expired":
            return (f"agreement {a.id} version {a.version} expired on {a.review_by.isoformat()} (its review_by); "
                    "nothing is shared under it until a renewed version is signed")
        return (f"agreement {a.id} version {a.version} takes effect on {a.effective_from.isoformat()} "
                "(its effective_from); nothing is shared under it before then")

    @property
    def extensions(self) -> dict[str, Any]:
        return {"agreement": self.agreement.id, "agreement_version": self.agreement.version}

    def decision(self) -> Decision:
        a = self.agreement
        return Decision(False, self.reason, self.reason_code, agreement_id=a.id, agreement_version=a.version,
                        agreement_hash=a.content_hash)


def not_in_force(
    policies: PolicySet, agency_id: str, today: date, *, network_id: str | None = None, purpose: str | None = None,
) -> list[NotInForce]:
    """The agreements the agency is a party to (deciding the network, declaring the purpose, when given)
    that exist but are not in force today: what a refusal names instead of "not open to you".

    Only refusals ask (never a read that succeeds): the hot path stays as it was.
    """
    found = []
    for agreement in policies:
        if agency_id not in agreement.party_set or agreement.in_force(today):
            continue
        if network_id is not None and network_id not in agreement.networks:
            continue
        if purpose is not None and not agreement.declares(purpose):
            continue
        code: Literal["agreement_expired", "agreement_not_yet_effective"] = (
            "agreement_expired" if today >= agreement.review_by else "agreement_not_yet_effective")
        found.append(NotInForce(agreement, code))
    return found


def lapse_told(
    policies: PolicySet, agency_id: str, network_id: str, today: date, decision: Decision,
) -> Decision:
    """A refusal for want of an agreement in force of the record's network, saying which one lapsed.

    Left as it was unless no agreement in force of the network has the agency as a party and one
    that is not in force does (a deny, or a rule that grants nothing, stands on its own).
    """
    if decision.permit or decision.reason_code not in ("no_agreement", "purpose_not_declared", "no_rule"):
        return decision
    if in_force_party(policies, agency_id, network_id, today):
        return decision
    for lapse in not_in_force(policies, agency_id, today, network_id=network_id):
        return lapse.decision()
    return decision


def lapse_explained(
    policies: PolicySet, agency_id: str, record: Record, explanation: Explanation,
) -> Explanation:
    """An explanation refused for want of an agreement in force: its decision names the lapsed one
    (`POST /v1/decisions/explain`, `casebridge policy explain`)."""
    network = record.attributes.get("network")
    if explanation.decision.permit or not isinstance(network, str):
        return explanation
    told = lapse_told(policies, agency_id, network, explanation.now, explanation.decision)
    return explanation if told is explanation.decision else replace(explanation, decision=told)


# -- networks and changes ------------------------------------------------------------------


def in_force_party(policies: PolicySet, agency_id: str, network_id: str, today: date) -> bool:
    """Whether the agency is a party to an agreement in force that decides this network's records."""
    network = policies.network(network_id)
    if network is None:
        return False
    for agreement_id in network.agreements:
        agreement = policies.get(agreement_id)
        if agreement is not None and agreement.in_force(today) and agency_id in agreement.party_set:
            return True
    return False


def awaiting_signatures(policies: PolicySet, agency_id: str, network_id: str) -> str:
    """"; agreement X version N is proposed: awaiting …" for each unsigned version of the network (or "")."""
    return "".join(f"; {p}" for p in policies.proposed_for(agency_id) if network_id in p.networks)


def networks_decided_for(policies: PolicySet, principal: Principal, today: date) -> tuple[str, ...]:
    """The networks in which the caller's agency is a party to an agreement in force (list scans)."""
    return tuple(n for n in sorted(policies.networks) if in_force_party(policies, principal.agency_id, n, today))


def is_coordinator(policies: PolicySet, principal: Principal, network_id: str) -> bool:
    """The network's coordinator agency (its focal point), calling with the coordinator role."""
    network = policies.network(network_id)
    return (
        network is not None and network.coordinator == principal.agency_id and "coordinator" in principal.roles
    )


def change_relations(policies: PolicySet, principal: Principal, referral: AnyReferral) -> frozenset[str]:
    """The caller's relations to a record for deciding a change: as for reads, plus `coordinator`."""
    relations = set(referral_relations(principal, referral))
    if is_coordinator(policies, principal, referral.network_id):
        relations.add("coordinator")
    return frozenset(relations)


def authorize_change(
    policies: PolicySet, principal: Principal, referral: AnyReferral, today: date, *,
    action: str, needs: frozenset[str],
) -> frozenset[str]:
    """A change is decided like a read: a party to an agreement in force of the record's network,
    holding one of the relations the action needs.  Returns the caller's relations; else raises.
    """
    refuse_admin(principal)
    network_id = referral.network_id
    if not in_force_party(policies, principal.agency_id, network_id, today):
        for lapse in not_in_force(policies, principal.agency_id, today, network_id=network_id):
            raise ChangeDenied(
                f"{action}: {lapse.reason}.", slug=lapse.slug, owner_agency=referral.referring_agency,
                subject_id=referral.subject_id, network=network_id, **lapse.extensions,
            )
        raise ChangeDenied(
            f"{action}: your agency is not a party to an agreement in force of network {network_id!r}"
            f"{awaiting_signatures(policies, principal.agency_id, network_id)}.",
            owner_agency=referral.referring_agency, subject_id=referral.subject_id, network=network_id,
        )
    relations = change_relations(policies, principal, referral)
    if not relations & needs:
        wanted = ", ".join(sorted(needs))
        raise ChangeDenied(
            f"{action} is for: {wanted} (of this record, in network {network_id!r}).",
            owner_agency=referral.referring_agency, subject_id=referral.subject_id, network=network_id,
            needs=sorted(needs),
        )
    return relations


def referral_relations(principal: Principal, referral: AnyReferral) -> frozenset[str]:
    relations = set()
    if principal.agency_id == referral.referring_agency:
        relations |= {"owner", "referrer"}
    if principal.agency_id in referral.assigned_agencies:
        relations.add("assigned")
    return frozenset(relations)


def referral_attributes(referral: AnyReferral, *, invited: bool = False) -> dict[str, AttributeValue]:
    """What rules look at; `invited`: read through a meeting's agenda item the caller's agency is
    invited to, while the meeting is open (every other read is not)."""
    attributes: dict[str, AttributeValue] = {
        "consent": referral.consent_status, "status": referral.status, "risk_level": referral.risk_level,
        "network": referral.network_id, "urgency": referral.urgency, "concerns": frozenset(referral.concerns),
        "invited": flag_value(invited),
    }
    if referral.intervention_type is not None:  # none yet: a permit asking about it fails, a deny holds
        attributes["intervention_type"] = referral.intervention_type
    return attributes


def decide_referral(
    policies: PolicySet, principal: Principal, referral: AnyReferral, purpose: str, view: str | None, today: date,
    *, invited: bool = False,
) -> Decision:
    relations = referral_relations(principal, referral)
    record = Record("referral", referral_attributes(referral, invited=invited))
    decision = decide(policies, caller(principal, relations), purpose, record, view, now=today)
    return decision if decision.permit else lapse_told(
        policies, principal.agency_id, referral.network_id, today, decision)


def grant_for(
    decision: Decision, principal: Principal, owner_agency: str, purpose: str, subject_id: str | None = None
) -> Grant:
    if not decision.permit:
        if decision.reason_code == "unknown_view":
            raise BadRequest(f"{decision.reason}.", slug="unknown-view")
        raise AccessDenied(decision, purpose, owner_agency=owner_agency, subject_id=subject_id)
    return Grant(decision, "access" if principal.agency_id == owner_agency else "disclosure")


def referral_grant(
    policies: PolicySet, principal: Principal, referral: AnyReferral, purpose: str, view: str | None, today: date,
    *, invited: bool = False,
) -> Grant:
    decision = decide_referral(policies, principal, referral, purpose, view, today, invited=invited)
    return grant_for(decision, principal, referral.referring_agency, purpose, referral.subject_id)


def note_relations(principal: Principal, referral: AnyReferral, author_agency: str) -> frozenset[str]:
    relations = set(referral_relations(principal, referral) - {"owner"})
    if principal.agency_id == author_agency:
        relations.add("owner")
    return frozenset(relations)


def decide_note(
    policies: PolicySet, principal: Principal, referral: AnyReferral, author_agency: str, classification: str,
    purpose: str, today: date,
) -> Decision:
    record = Record("note", {**referral_attributes(referral), "classification": classification})
    relations = note_relations(principal, referral, author_agency)
    decision = decide(policies, caller(principal, relations), purpose, record, None, now=today)
    return decision if decision.permit else lapse_told(
        policies, principal.agency_id, referral.network_id, today, decision)


def scope(policies: PolicySet, principal: Principal, purpose: str, kind: RecordKind, today: date) -> Reach:
    return reach(policies, caller(principal, ALL_RELATIONS), purpose, kind, today)
