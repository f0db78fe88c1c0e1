"""Who can receive a view for a purpose: the audiences and conditions of the permits."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.policy.build import NETWORK_CONDITION
from app.policy.model import Agreement, Permit, View
from app.policy.overlap import deny_may_block
from app.policy.policy_set import PolicySet


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
