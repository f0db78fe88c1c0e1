"""Decide whether a caller may receive a record for a purpose, and which view of it."""

from bisect import bisect_right
from datetime import date

from app.policy.decision import Caller, Decision, Record
from app.policy.index import (
    Bucket,
    CompiledView,
    PermitEntry,
    PolicyIndex,
    Scope,
    audience_matches,
    denied,
    no_rule,
    permitted,
    training_required,
)
from app.policy.model import View
from app.policy.policy_set import PolicySet
from app.policy.vocabulary import RecordKind

__all__ = ["Caller", "Decision", "Record", "decide", "find_view", "purposes_for"]


def decide(
    policy_set: PolicySet,
    caller: Caller,
    purpose: str,
    record: Record,
    view: str | None = None,
    *,
    now: date,
) -> Decision:
    """Default deny; any matching deny beats every permit; the most detailed view wins."""
    index = policy_set.index
    scope = index.scopes.get(caller.agency_id, index.nowhere)
    day = bisect_right(index.breaks, now)  # index.day(), inlined
    applicable = scope.agreements & index.in_force[day]
    if not applicable:
        return _no_agreement(policy_set, caller.agency_id)
    if not index.declared.get(purpose, 0) & applicable:
        return _not_declared(index, purpose)
    kind = record.kind
    by_kind = scope.buckets.get(purpose)  # scope.bucket(), inlined: this is the hot path
    bucket = by_kind.get(kind, scope.empty) if by_kind else scope.empty
    return _evaluate(index, scope, bucket, applicable, day, caller, purpose, record, view)


def _evaluate(
    index: PolicyIndex,
    scope: Scope,
    bucket: Bucket,
    applicable: int,
    day: int,
    caller: Caller,
    purpose: str,
    record: Record,
    view: str | None,
) -> Decision:
    """The caller's rules in the bucket against the record: denies first, then permits."""
    get = record.attributes.get
    # Rules whose audience has the caller and whose record conditions hold.
    matched = bucket.holding(bucket.matching(caller, day), get)
    denies = matched & scope.deny_bits
    permits = matched >> scope.shift
    kind = record.kind
    given = get("classification") if kind == "note" else None
    classification = given if isinstance(given, str) else None  # a note has one classification
    if kind == "note":
        if classification is None:
            permits = 0
        else:
            hit = denies & scope.note_denies.get(classification, 0)
            if hit:
                return _denied(index, scope, hit, view)
            permits &= bucket.showing.get(classification, 0)  # a view that shows the note
        denies = 0  # past this point a note deny has no say: its items are classifications
    lacking = permits & bucket.needs_training  # zero unless some rule here requires a course
    if lacking:
        lacking = bucket.lacking(caller.trained, lacking)
        if lacking:
            return _training(
                index, scope, bucket, permits, lacking, denies, purpose, kind, classification,
                view, applicable, caller.trained,
            )
    return _grant(
        index, scope, bucket, permits, denies, purpose, kind, classification, view, applicable
    )


def _training(
    index: PolicyIndex,
    scope: Scope,
    bucket: Bucket,
    permits: int,
    lacking: int,
    denies: int,
    purpose: str,
    kind: RecordKind,
    classification: str | None,
    view: str | None,
    applicable: int,
    trained: frozenset[str],
) -> Decision:
    """Some permits need courses the caller lacks: they grant nothing.

    Decided as if the caller held every course; a denial stands as it is. A permit of the
    courses the caller holds still grants its view; when nothing does, training was the only
    thing between the caller and the grant, and the refusal says which courses.
    """
    full = _grant(index, scope, bucket, permits, denies, purpose, kind, classification, view, applicable)
    if not full.permit:
        return full
    real = _grant(
        index, scope, bucket, permits & ~lacking, denies, purpose, kind, classification, view, applicable
    )
    return real if real.permit else _untrained(index, full, trained)


def _untrained(index: PolicyIndex, full: Decision, trained: frozenset[str]) -> Decision:
    """The grant `full` refused for the courses its rules need that the caller does not hold."""
    assert full.agreement_id is not None
    agreement = index.agreement(full.agreement_id)
    needed = frozenset().union(
        *(p.requires_training for p in agreement.all_permits if p.id in full.rule_ids)
    )
    missing = needed - trained
    key = ("training_required", full.agreement_id, full.rule_ids, full.view, missing)
    decision = index.decisions.get(key)
    if decision is None:
        decision = training_required(full, missing)
        index.decisions.put(key, decision)
    return decision


def _grant(
    index: PolicyIndex,
    scope: Scope,
    bucket: Bucket,
    permits: int,
    denies: int,
    purpose: str,
    kind: RecordKind,
    classification: str | None,
    view: str | None,
    applicable: int,
) -> Decision:
    """The most detailed view `permits` grant (or the one asked for), unless a deny blocks it."""
    if view is not None:
        return _requested(
            index, scope, bucket, permits, denies, purpose, kind, classification, view, applicable
        )
    blocked = 0
    rest = denies
    while rest:
        low = rest & -rest
        rest ^= low
        blocked |= bucket.blocked_by[low.bit_length() - 1]
    free = permits & ~blocked
    if free:
        # The lowest bit shows the most detailed view; alone, its permit decides.
        low = free & -free
        first = low.bit_length() - 1
        if free & bucket.groups[first] == low:
            return bucket.permits[first].decision
        return _together(index, bucket, free & bucket.groups[first])
    if permits:
        # Every grant is blocked: cite the first deny that cancelled one.
        return _denied(index, scope, _first_blocking(bucket, denies, permits), None)
    if bucket.no_rule is not None:
        return bucket.no_rule
    return _no_rule(index, kind, purpose, None)


def _together(index: PolicyIndex, bucket: Bucket, group: int) -> Decision:
    """Several permits grant the winning view: they decide together, in declaration order."""
    rules = []
    while group:
        low = group & -group
        group ^= low
        rules.append(bucket.permits[low.bit_length() - 1])
    return _permitted(index, rules[0].view, tuple(rules))


def _first_blocking(bucket: Bucket, denies: int, permits: int) -> int:
    """The first deny (lowest bit) that blocks one of `permits`."""
    while denies:
        low = denies & -denies
        denies ^= low
        if bucket.blocked_by[low.bit_length() - 1] & permits:
            return low
    raise AssertionError("unreachable: a blocked permit has a deny blocking it")


def _requested(
    index: PolicyIndex,
    scope: Scope,
    bucket: Bucket,
    permits: int,
    denies: int,
    purpose: str,
    kind: RecordKind,
    classification: str | None,
    name: str,
    applicable: int,
) -> Decision:
    """Permits whose view covers the requested one, projected onto it (most detailed first)."""
    candidates: list[PermitEntry] = []
    while permits:
        low = permits & -permits
        permits ^= low
        entry = bucket.permits[low.bit_length() - 1]
        if name in entry.covers:
            candidates.append(entry)
    found = False
    blocked = 0
    for shown in scope.views_named.get(name, ()):
        if shown.kind != kind or not shown.abit & applicable:
            continue
        found = True
        if kind == "note":
            if classification not in shown.items:
                continue
        elif shown.deny_mask & denies:
            blocked |= shown.deny_mask & denies
            continue
        rules = [entry for entry in candidates if entry.abit == shown.abit]
        if len(rules) == 1:
            return rules[0].covers[name]
        if rules:
            rules.sort(key=lambda entry: entry.seq)
            return _permitted(index, shown, tuple(rules))
    if not found:
        return _unknown_view(index, applicable, name, kind)
    if blocked:
        # Nothing survives: cite the first deny that covers what was asked.
        return _denied(index, scope, blocked, name)
    return bucket.no_rules.get(name) or _no_rule(index, kind, purpose, name)


def _permitted(index: PolicyIndex, shown: CompiledView, rules: tuple[PermitEntry, ...]) -> Decision:
    key = (shown, *rules)
    decision = index.decisions.get(key)
    if decision is None:
        decision = permitted(shown, rules)
        index.decisions.put(key, decision)
    return decision


def _denied(index: PolicyIndex, scope: Scope, bits: int, view: str | None) -> Decision:
    """Denied by the first deny (lowest bit) among `bits`."""
    entry = scope.denies[(bits & -bits).bit_length() - 1]
    if view is None:
        return entry.decision
    prebuilt = entry.decisions.get(view)
    if prebuilt is not None:
        return prebuilt
    key = (entry, view)  # a note denied whatever view was asked for, known or not
    decision = index.decisions.get(key)
    if decision is None:
        decision = denied(entry.agreement, entry.deny, view)
        index.decisions.put(key, decision)
    return decision


def _no_rule(index: PolicyIndex, kind: RecordKind, purpose: str, view: str | None) -> Decision:
    key = ("no_rule", kind, purpose, view)
    decision = index.decisions.get(key)
    if decision is None:
        decision = no_rule(kind, purpose, view)
        index.decisions.put(key, decision)
    return decision


def _no_agreement(policy_set: PolicySet, agency: str) -> Decision:
    index = policy_set.index
    key = ("no_agreement", agency)
    decision = index.decisions.get(key)
    if decision is None:
        # An agreement still awaiting signatures is named, with whose.
        waiting = "".join(f"; {p}" for p in policy_set.proposed_for(agency))
        reason = f"no agreement in force for agency {agency}{waiting}"
        decision = Decision(False, reason, "no_agreement")
        index.decisions.put(key, decision)
    return decision


def _not_declared(index: PolicyIndex, purpose: str) -> Decision:
    key = ("purpose_not_declared", purpose)
    decision = index.decisions.get(key)
    if decision is None:
        reason = f"purpose not declared: {purpose!r} is not a purpose of any agreement in force"
        decision = Decision(False, reason, "purpose_not_declared")
        index.decisions.put(key, decision)
    return decision


def _unknown_view(index: PolicyIndex, applicable: int, name: str, kind: RecordKind) -> Decision:
    defined = bool(index.defines_view.get(name, 0) & applicable)
    key = ("unknown_view", name, kind, defined)
    decision = index.decisions.get(key)
    if decision is None:
        if defined:
            reason = f"view {name} does not apply to {kind} records"
        else:
            reason = f"unknown view {name}: no agreement in force defines it"
        decision = Decision(False, reason, "unknown_view", view=name)
        index.decisions.put(key, decision)
    return decision


def purposes_for(policy_set: PolicySet, caller: Caller, now: date) -> list[str]:
    """Purposes for which some permit in force names this caller (record conditions aside).

    Worked out once per agreement set, caller and day (the set is immutable; a reload makes a new one)."""
    key = (caller, now)
    known = policy_set.index.purposes.get(key)
    if known is None:
        open_purposes: set[str] = set()
        for agreement in policy_set:
            if not agreement.in_force(now) or caller.agency_id not in agreement.party_set:
                continue
            for permit in agreement.all_permits:
                if not permit.audience.is_empty and audience_matches(permit.audience, caller):
                    open_purposes |= permit.purposes
        known = tuple(sorted(open_purposes))
        policy_set.index.purposes.put(key, known)
    return list(known)


def find_view(policy_set: PolicySet, agreement_id: str, name: str) -> View | None:
    """The view `name` as defined by agreement `agreement_id`."""
    agreement = policy_set.get(agreement_id)
    return None if agreement is None else agreement.views.get(name)
