"""Lint agreements: rules that never fire, rules a deny cancels, over-broad grants, reviews, networks.

Past the checks rule by rule, the exact analysis (app/policy/exact_lint.py) finds rules nothing
reaches, permits another makes redundant and denies that deny nothing.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from app.policy.build import NETWORK_CONDITION
from app.policy.exact_lint import IDLE_DENY, exact_findings
from app.policy.fields import DIRECT_IDENTIFIER_FIELDS
from app.policy.loader import LoadResult
from app.policy.matching import listing
from app.policy.model import Agreement, Permit
from app.policy.overlap import deny_cancels
from app.policy.policy_set import PolicySet
from app.policy.vocabulary import NON_STATUTORY_SECTORS, RECORD_VALUES

Level = Literal["error", "warning", "info"]
REVIEW_NOTICE = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    agreement: str
    rule: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "agreement": self.agreement,
            "rule": self.rule,
            "message": self.message,
        }


def check(source: PolicySet | LoadResult, now: date) -> list[Finding]:
    """Every finding for every agreement; load errors and warnings come first."""
    findings: list[Finding] = []
    policy_set = source
    if isinstance(source, LoadResult):
        policy_set = source.policy_set
        for error in source.errors:
            findings.append(Finding("error", error.agreement or error.file, None, str(error)))
        for warning in source.warnings:
            findings.append(Finding("warning", "", None, warning))
    assert isinstance(policy_set, PolicySet)
    for agreement in policy_set:
        findings.extend(_review(agreement, now))
        for permit in agreement.all_permits:
            findings.extend(_never_fires(agreement, permit))
            findings.extend(_cancelled(agreement, permit))
            findings.extend(_over_grant(agreement, permit))
            findings.extend(_bases(agreement, permit))
        findings.extend(_unused(agreement))
    findings.extend(_networks(policy_set, now))
    # The exact analysis, for the rules the checks above found nothing wrong with.
    flagged = {(f.agreement, f.rule) for f in findings if f.rule and f.level != "info"}
    findings.extend(
        Finding("info" if message.startswith(IDLE_DENY) else "warning", agreement.id, rule, message)
        for agreement, rule, message in exact_findings(policy_set, now)
        if (agreement.id, rule) not in flagged
    )
    return findings


def _review(agreement: Agreement, now: date) -> list[Finding]:
    if now >= agreement.review_by:
        message = f"expired on {agreement.review_by}: it discloses nothing until reviewed"
        return [Finding("error", agreement.id, None, message)]
    if agreement.review_by - now <= REVIEW_NOTICE:
        days = (agreement.review_by - now).days
        message = f"review due by {agreement.review_by} ({days} days left)"
        return [Finding("warning", agreement.id, None, message)]
    if now < agreement.effective_from:
        message = f"not in force until {agreement.effective_from}"
        return [Finding("info", agreement.id, None, message)]
    return []


def _never_fires(agreement: Agreement, permit: Permit) -> list[Finding]:
    def finding(reason: str, level: Level = "warning") -> Finding:
        return Finding(level, agreement.id, permit.id, reason)

    found: list[Finding] = []
    audience = permit.audience
    if audience.is_empty:
        found.append(finding("never fires: `to` names no recipients"))
    for key, values in audience.keys().items():
        if not values:
            found.append(finding(f"never fires: `to.{key}` is empty"))
    if audience.agencies:
        outside = audience.agencies - agreement.party_set
        if outside == audience.agencies:
            found.append(finding(f"never fires: agencies {listing(outside)} are not parties"))
        elif outside:
            found.append(finding(f"agencies {listing(outside)} are not parties"))
    if "admin" in (audience.roles or frozenset()):
        found.append(
            finding("grants case data to the admin role, which never reads case data", "error")
        )
    kind = permit.view.kind
    for key, allowed in permit.when:
        if key == NETWORK_CONDITION:
            continue  # implicit: the agreement's own networks, checked when it is loaded
        known = RECORD_VALUES.get(key, frozenset())
        if (kind != "note" and key == "classification") or kind == "statistics":
            found.append(finding(f"never fires: {kind} records have no {key}"))
        elif not allowed or not allowed & known:
            found.append(finding(f"never fires: no {key} value in {listing(allowed)} can occur"))
        elif allowed - known:
            found.append(finding(f"unreachable {key} values {listing(allowed - known)}"))
        if key == "classification" and kind == "note" and allowed.isdisjoint(permit.view.items):
            found.append(finding(f"never fires: {listing(allowed)} are outside {permit.view.name}"))
    return found


def _cancelled(agreement: Agreement, permit: Permit) -> list[Finding]:
    for deny in agreement.denies:
        if deny_cancels(deny, permit):
            message = f"entirely cancelled by deny {deny.id}: it can never disclose anything"
            return [Finding("warning", agreement.id, permit.id, message)]
    return []


def _over_grant(agreement: Agreement, permit: Permit) -> list[Finding]:
    found: list[Finding] = []
    view = permit.view
    identifiers = view.items & DIRECT_IDENTIFIER_FIELDS if view.kind == "referral" else frozenset()

    def finding(message: str) -> None:
        found.append(Finding("warning", agreement.id, permit.id, message))

    if "statistics" in permit.purposes and view.kind != "statistics":
        what = (
            f"direct identifiers {listing(identifiers)}" if identifiers else f"{view.kind} records"
        )
        finding(f"grants {what} for statistics: statistics need an aggregate view")
    sectors = permit.audience.sectors
    to_partners = (sectors is not None and sectors and sectors <= NON_STATUTORY_SECTORS) or (
        permit.audience.roles == frozenset({"partner_reader"})
    )
    if to_partners and view.kind == "referral":
        # A partner assigned to work with the person may need to know who they are.
        assigned = permit.audience.relations == frozenset({"assigned"})
        excess = (frozenset() if assigned else identifiers) | view.special
        excess |= view.items & {"narrative"}
        if excess:
            finding(
                f"grants {view.name} with {listing(excess)} to civil-society partners:"
                " more than a summary needs"
            )
    if to_partners and view.kind == "note" and view.items - {"shared"}:
        finding(f"grants notes {listing(view.items - {'shared'})} to civil-society partners")
    if (
        sectors is not None
        and "police" in sectors
        and view.kind == "note"
        and "health" in view.items
    ):
        finding("grants health notes to the police sector")
    return found


def _bases(agreement: Agreement, permit: Permit) -> list[Finding]:
    found: list[Finding] = []
    consent = dict(permit.when).get("consent")
    if permit.legal_basis == "consent" and consent != frozenset({"given"}):
        message = "legal basis is consent but the rule does not require consent: [given]"
        found.append(Finding("warning", agreement.id, permit.id, message))
    if permit.special_category_condition and not permit.view.special:
        message = (
            f"names special_category_condition {permit.special_category_condition}"
            f" but {permit.view.name} has no special-category data"
        )
        found.append(Finding("info", agreement.id, permit.id, message))
    return found


def _networks(policy_set: PolicySet, now: date) -> list[Finding]:
    """A network whose coordinator is a party to none of its agreements in force can triage nothing."""
    found: list[Finding] = []
    for network in policy_set.networks.values():
        coordinator = network.coordinator
        in_force = [a for a in (policy_set.get(i) for i in network.agreements) if a and a.in_force(now)]
        if coordinator is None or not in_force:
            continue
        if not any(coordinator in a.party_set for a in in_force if len(a.networks) == 1):
            message = (
                f"network {network.id}: coordinator {coordinator} is a party to none of its agreements"
                f" in force ({', '.join(a.id for a in in_force)}): it can triage nothing"
            )
            found.append(Finding("warning", in_force[0].id, None, message))
    return found


def _unused(agreement: Agreement) -> list[Finding]:
    used_views = {p.view.name for p in agreement.all_permits}
    used_views |= {d.view_label for d in agreement.denies}
    used_purposes = (
        set().union(*(p.purposes for p in agreement.permits)) if agreement.permits else set()
    )
    found = [
        Finding("info", agreement.id, None, f"view {name} is not granted by any rule")
        for name in agreement.views
        if name not in used_views
    ]
    found.extend(
        Finding("info", agreement.id, None, f"purpose {purpose} is served by no rule")
        for purpose in agreement.purposes
        if purpose not in used_purposes
    )
    return found
