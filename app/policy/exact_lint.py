"""Lint from the exact analysis: rules nothing reaches, permits others make redundant, idle denies.

Over the classes of `app.policy.space` (every caller, purpose and record shape), for the
agreements in force:

- a rule is *unreachable* when no class has a caller meeting its audience (and, for a permit,
  holding its courses) with a record meeting its conditions, for one of its purposes;
- a permit P is *subsumed* by a permit Q of the same agreement when Q matches wherever P
  does (every caller class meeting P meets Q, every record class meeting P meets Q), serves
  each of P's purposes, shows every item of P's view, names an Art. 9(2) condition if P does,
  and every deny that may cancel Q's view also overlaps P's: then removing P changes nothing
  that leaves;
- a deny *denies nothing* when, in every class it matches, no permit it could cancel matches.
"""

from datetime import date

from app.policy.model import Agreement, Deny, Permit
from app.policy.policy_set import PolicySet
from app.policy.space import KINDS, Space

IDLE_DENY = "denies nothing"  # info, not a warning: a deny may guard against rules yet to come


def exact_findings(policy_set: PolicySet, now: date) -> list[tuple[Agreement, str, str]]:
    """(agreement, rule id, message) for every rule the exact analysis finds idle or redundant."""
    space = Space.of([(policy_set, now)])
    signatures = space.signatures[0]
    permit_bits = {id(p): 1 << i for i, (_, p) in enumerate(signatures.permits)}
    deny_bits = {id(d): 1 << i for i, (_, d) in enumerate(signatures.denies)}
    met_permits = met_denies = 0
    # Per purpose and kind: the (caller permits, caller denies, record permits, record denies, classification).
    meetings: list[tuple[str, str, int, int, int, int, object]] = []
    for purpose in space.dimensions.purposes:
        for kind in KINDS:
            callers, records = space.groups(purpose, kind)
            for _, caller_key, _ in callers:
                _, permits, denies = caller_key[0]
                for _, record_key, _, _ in records:
                    given, holding, denying = record_key[0]
                    if permits & holding or denies & denying:
                        meetings.append((purpose, kind, permits, denies, holding, denying, given))
                        met_permits |= permits & holding
                        met_denies |= denies & denying
    found: list[tuple[Agreement, str, str]] = []
    for agreement, permit in signatures.permits:
        if not permit_bits[id(permit)] & met_permits:
            found.append((agreement, permit.id, "unreachable: no caller, purpose and record it matches"))
            continue
        for other_agreement, other in signatures.permits:
            if other is not permit and other_agreement is agreement and _subsumes(
                space, signatures.denies, permit_bits[id(other)], other, permit_bits[id(permit)], permit
            ):
                found.append((agreement, permit.id, f"subsumed by {other.id}: it grants nothing {other.id} does not"))
                break
    for agreement, deny in signatures.denies:
        bit = deny_bits[id(deny)]
        if not bit & met_denies:
            found.append((agreement, deny.id, "unreachable: no caller, purpose and record it matches"))
        elif not any(
            bit & denies & denying
            and _cancels_some(deny, signatures.permits, permit_bits, purpose, permits & holding, given)
            for purpose, kind, permits, denies, holding, denying, given in meetings
            if kind == deny.kind
        ):
            message = "denies nothing: no permit it could cancel matches where it does (a guard for future rules?)"
            found.append((agreement, deny.id, message))
    return found


def _subsumes(
    space: Space, denies: list[tuple[Agreement, Deny]], q_bit: int, q: Permit, p_bit: int, p: Permit
) -> bool:
    if q.view.kind != p.view.kind or not p.view.items <= q.view.items or not p.purposes <= q.purposes:
        return False
    if p.special_category_condition and not q.special_category_condition:
        return False
    if q.view.kind != "note" and any(
        d.kind == q.view.kind and d.items & q.view.items and not d.items & p.view.items for _, d in denies
    ):
        return False
    callers = all(key[0][1] & q_bit for _, key, _ in space.callers if key[0][1] & p_bit)
    return callers and all(key[0][1] & q_bit for _, key, _, _ in space.records if key[0][1] & p_bit)


def _cancels_some(
    deny: Deny,
    permits: list[tuple[Agreement, Permit]],
    bits: dict[int, int],
    purpose: str,
    matched: int,
    given: object,
) -> bool:
    """Some permit matched here is one `deny` would cancel."""
    for _, permit in permits:
        if not bits[id(permit)] & matched or purpose not in permit.purposes or permit.view.kind != deny.kind:
            continue
        if deny.kind == "note":
            if given in deny.items and given in permit.view.items:
                return True
        elif permit.view.items & deny.items:
            return True
    return False
