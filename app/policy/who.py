"""Who can receive a view for a purpose: the audiences and conditions of the permits."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.policy.build import NETWORK_CONDITION
from app.policy.model import Agreement, Permit, View
from app.policy.overlap import deny_may_block
from app.policy.policy_set import PolicySet
from app.policy.space import CallerShape, RecordShape, analyse, field_name


@dataclass(frozen=True, slots=True)
class Recipient:
    """One permit's audience for the view; `restricted_by` lists denies that may cancel it.

    `networks` are those whose records the agreement decides (the rule's implicit condition);
    `conditions` are the ones the rule states.
    """

    agreement_id: str
    networks: tuple[str, ...]
    rule_id: str
    granted_view: str
    roles: tuple[str, ...] | None
    sectors: tuple[str, ...] | None
    agencies: tuple[str, ...] | None
    relations: tuple[str, ...] | None
    conditions: dict[str, tuple[str, ...]]
    restricted_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "agreement": self.agreement_id,
            "networks": list(self.networks),
            "rule": self.rule_id,
            "granted_view": self.granted_view,
            "roles": _listed(self.roles),
            "sectors": _listed(self.sectors),
            "agencies": _listed(self.agencies),
            "relations": _listed(self.relations),
            "conditions": {k: list(v) for k, v in self.conditions.items()},
            "restricted_by": list(self.restricted_by),
        }


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def _sorted(values: frozenset[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(sorted(values))


def who_can(
    policy_set: PolicySet, view: str, purpose: str, now: date, network: str | None = None
) -> list[Recipient]:
    """Permits in force granting `view` (or a view covering it) for `purpose`.

    With `network`, only the agreements that decide that network's records.
    """
    found: list[Recipient] = []
    for agreement in policy_set:
        wanted = agreement.views.get(view)
        if wanted is None or not agreement.in_force(now):
            continue
        if network is not None and agreement.networks and network not in agreement.networks:
            continue
        for permit in agreement.all_permits:
            if _grants(permit, wanted, purpose):
                found.append(_recipient(agreement, permit))
    return found


def _grants(permit: Permit, wanted: View, purpose: str) -> bool:
    return (
        purpose in permit.purposes and not permit.audience.is_empty and permit.view.covers(wanted)
    )


def _recipient(agreement: Agreement, permit: Permit) -> Recipient:
    audience = permit.audience
    return Recipient(
        agreement_id=agreement.id,
        networks=tuple(sorted(agreement.networks)),
        rule_id=permit.id,
        granted_view=permit.view.name,
        roles=_sorted(audience.roles),
        sectors=_sorted(audience.sectors),
        agencies=_sorted(audience.agencies),
        relations=_sorted(audience.relations),
        conditions={
            key: tuple(sorted(values)) for key, values in permit.when if key != NETWORK_CONDITION
        },
        restricted_by=tuple(d.id for d in agreement.denies if deny_may_block(d, permit)),
    )


class UnknownName(ValueError):
    """A view or field no agreement in force defines: an error, not an empty answer."""


@dataclass(frozen=True, slots=True)
class Receiver:
    """One audience class that receives the field (or view) for a purpose, from the exact analysis.

    `caller` is the class's representative; `records` how many record classes it receives it on,
    `record` one of them.
    """

    caller: CallerShape
    purpose: str
    views: tuple[str, ...]
    rule_ids: tuple[str, ...]
    records: int
    record: RecordShape

    def to_dict(self) -> dict[str, Any]:
        return {
            "caller": self.caller.to_dict(),
            "purpose": self.purpose,
            "views": list(self.views),
            "rules": list(self.rule_ids),
            "record_classes": self.records,
            "record": self.record.to_dict(),
        }


def receivers(
    policy_set: PolicySet,
    now: date,
    *,
    field: str | None = None,
    view: str | None = None,
    purpose: str | None = None,
    network: str | None = None,
) -> list[Receiver]:
    """Every audience class that receives `field` (through any view with it) or `view`, exactly.

    Raises UnknownName for a view or field no agreement in force defines.
    """
    in_force = [a for a in policy_set if a.in_force(now)]
    if view is not None and not any(view in a.views for a in in_force):
        raise UnknownName(f"unknown view {view!r}: no agreement in force defines it")
    wanted = None if field is None else _field_of(field, in_force)
    found: dict[tuple[CallerShape, str], list[Any]] = {}
    for cell in analyse(policy_set, now).cells():
        if purpose is not None and cell.purpose != purpose:
            continue
        if network is not None and dict(cell.record.attributes).get(NETWORK_CONDITION) != network:
            continue
        grants = [g for g in cell.outcome.grants if (g.view == view if wanted is None else wanted in g.fields)]
        if not grants:
            continue
        entry = found.setdefault((cell.caller, cell.purpose), [set(), {}, 0, cell.record])
        entry[0].update(g.view for g in grants)
        entry[1].update(dict.fromkeys(r for g in grants for r in g.rule_ids))
        entry[2] += 1
    return [
        Receiver(caller, purpose_, tuple(sorted(views)), tuple(rules), count, record)
        for (caller, purpose_), (views, rules, count, record) in found.items()
    ]


def _field_of(name: str, agreements: list[Agreement]) -> str:
    """`name` as a field of the space; unknown unless some view in force lets it leave."""
    shown = {field_name(v.kind, item) for a in agreements for v in a.views.values() for item in v.items}
    if name not in shown:
        raise UnknownName(f"unknown field {name!r}: no view of an agreement in force includes it")
    return name
