"""A naive reference for decide(): plain loops over every rule of every agreement, no index.

Networks are modelled here on their own, per agreement, not through the rules' conditions:
an agreement decides a record only when the record's network is one of the agreement's
networks. A record naming no network fails every permit and meets every deny (fail closed,
as for any other condition). An agreement with no networks (built in code) decides every
network's records.
"""

from dataclasses import dataclass
from datetime import date

from app.policy.decision import Caller, Record
from app.policy.model import Agreement, Audience, Conditions, Deny, Permit, View

# The record attribute naming its network; rules carry it as an implicit condition, which
# this reference ignores in favour of its own reading of the agreement's networks.
NETWORK = "network"


@dataclass(frozen=True)
class Outcome:
    permit: bool
    view: str | None
    rule_ids: tuple[str, ...]
    agreement_id: str | None
    reason_code: str


def _key_matches(values: frozenset[str] | None, have: set[str]) -> bool:
    if values is None:
        return True
    return any(value in have for value in values)


def audience_matches(audience: Audience, caller: Caller, *, empty_means_everyone: bool) -> bool:
    if (
        audience.roles is None
        and audience.sectors is None
        and audience.agencies is None
        and (audience.relations is None)
    ):
        return empty_means_everyone
    return (
        _key_matches(audience.agencies, {caller.agency_id})
        and _key_matches(audience.sectors, {caller.sector})
        and _key_matches(audience.roles, set(caller.roles))
        and _key_matches(audience.relations, set(caller.relations))
    )


def _written(when: Conditions) -> Conditions:
    """The conditions the agreement's author wrote (without the implicit network one)."""
    return tuple((key, allowed) for key, allowed in when if key != NETWORK)


def _present(record: Record, key: str) -> bool:
    return bool(record.attributes.get(key))  # an empty set of values is no value


def _allowed(value: str | frozenset[str], allowed: frozenset[str]) -> bool:
    """One value in the list; of a set of values, any one."""
    return value in allowed if isinstance(value, str) else bool(value & allowed)


def _permit_conditions(permit: Permit, record: Record) -> bool:
    for key, allowed in _written(permit.when):
        if not _present(record, key) or not _allowed(record.attributes[key], allowed):
            return False
    return True


def _deny_conditions(deny: Deny, record: Record) -> bool:
    for key, allowed in _written(deny.when):
        if _present(record, key) and not _allowed(record.attributes[key], allowed):
            return False
    return True


def decides(agreement: Agreement, record: Record, *, missing_holds: bool) -> bool:
    """Whether the agreement decides this record: the record is of one of its networks."""
    if not agreement.networks:
        return True
    network = record.attributes.get(NETWORK)
    if network is None:
        return missing_holds
    return network in agreement.networks


def _overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    return any(item in b for item in a)


def reference_decide(
    agreements: list[Agreement],
    caller: Caller,
    purpose: str,
    record: Record,
    view: str | None,
    now: date,
) -> Outcome:
    """Training: decided as if the caller held every course; a denial stands as it is. When
    that grant needs a course the caller lacks, the permits of courses held decide; when
    none of them grants, the refusal is `training_required`, citing the grant's rules."""
    full = _decide(agreements, caller, purpose, record, view, now, trained=None)
    if not full.permit:
        return full
    real = _decide(agreements, caller, purpose, record, view, now, trained=caller.trained)
    if real.permit:
        return real
    return Outcome(False, full.view, full.rule_ids, full.agreement_id, "training_required")


def _decide(
    agreements: list[Agreement],
    caller: Caller,
    purpose: str,
    record: Record,
    view: str | None,
    now: date,
    *,
    trained: frozenset[str] | None,
) -> Outcome:
    """The decision over the permits whose courses are all in `trained` (None: every permit)."""
    applicable = [
        a
        for a in sorted(agreements, key=lambda a: a.id)
        if a.effective_from <= now < a.review_by and caller.agency_id in a.parties
    ]
    if not applicable:
        return Outcome(False, None, (), None, "no_agreement")
    declared = False
    for a in applicable:
        if purpose in a.purposes or (purpose == "emergency" and a.emergency is not None):
            declared = True
    if not declared:
        return Outcome(False, None, (), None, "purpose_not_declared")

    denies: list[Deny] = []
    for a in applicable:
        if not decides(a, record, missing_holds=True):
            continue
        for d in a.denies:
            if d.kind != record.kind:
                continue
            if d.purposes is not None and purpose not in d.purposes:
                continue
            if not audience_matches(d.audience, caller, empty_means_everyone=True):
                continue
            if not _deny_conditions(d, record):
                continue
            denies.append(d)
    classification = record.attributes.get("classification")
    if record.kind == "note":
        for d in denies:
            if classification in d.items:
                return Outcome(False, view, (d.id,), d.agreement_id, "denied_by_rule")

    requested: dict[str, View] = {}
    if view is not None:
        for a in applicable:
            if view in a.views and a.views[view].kind == record.kind:
                requested[a.id] = a.views[view]
        if not requested:
            return Outcome(False, view, (), None, "unknown_view")

    options: list[tuple[str, View, Permit]] = []
    blocked: list[View] = []
    for a in applicable:
        if not decides(a, record, missing_holds=False):
            continue
        permits = list(a.permits)
        if a.emergency is not None:
            permits.append(a.emergency)
        for p in permits:
            if p.view.kind != record.kind or purpose not in p.purposes:
                continue
            if trained is not None and not p.requires_training <= trained:
                continue
            if not audience_matches(p.audience, caller, empty_means_everyone=False):
                continue
            if not _permit_conditions(p, record):
                continue
            if view is None:
                shown = p.view
            else:
                if a.id not in requested or not requested[a.id].items.issubset(p.view.items):
                    continue
                shown = requested[a.id]
            if record.kind == "note":
                if classification not in shown.items:
                    continue
            elif any(_overlap(d.items, shown.items) for d in denies):
                blocked.append(shown)
                continue
            options.append((a.id, shown, p))
    if options:
        best_id, best_view, _ = sorted(options, key=lambda o: (-len(o[1].items), o[0], o[1].name))[
            0
        ]
        rules = tuple(
            p.id for aid, shown, p in options if aid == best_id and shown.name == best_view.name
        )
        return Outcome(True, best_view.name, rules, best_id, "permitted")
    if record.kind != "note":
        blocked.extend(requested.values())
    for d in denies:
        if any(_overlap(d.items, b.items) for b in blocked):
            return Outcome(False, view, (d.id,), d.agreement_id, "denied_by_rule")
    return Outcome(False, view, (), None, "no_rule")
