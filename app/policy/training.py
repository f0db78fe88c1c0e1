"""Training networks stay apart from real ones: the one predicate every cross-network path asks.

A training network (`training: true` in its file, made by `casebridge training-network create`) holds
synthetic people for practice. Nothing may be linked, moved or disclosed between it and a real
network, so the loader refuses the files that would join them (an agreement naming both kinds, an
agency member of both) and the request paths that cross networks (a transfer, an assignment, a
subject linked by identifier) ask `same_kind` before they act.
"""

from collections.abc import Mapping

from app.policy.model import Agreement, Network
from app.policy.policy_set import PolicySet

# Identifiers posted into a training network are kept under this system prefix, so their keyed
# digests never equal a real person's: a synthetic record cannot link to a real one, or reveal one.
TRAINING_SYSTEM_PREFIX = "training:"


def is_training_network(policies: PolicySet, network_id: str | None) -> bool:
    network = policies.network(network_id) if network_id else None
    return network is not None and network.training


def is_training_agency(policies: PolicySet, agency_id: str | None) -> bool:
    """True for a member of a training network (the loader keeps such agencies out of real ones)."""
    return bool(agency_id) and any(is_training_network(policies, n) for n in policies.networks_of(agency_id or ""))


def same_kind(policies: PolicySet, network_id: str, other: str) -> bool:
    """Whether a record may pass between the two networks: both training, or both real."""
    return is_training_network(policies, network_id) == is_training_network(policies, other)


def agency_fits(policies: PolicySet, agency_id: str, network_id: str) -> bool:
    """Whether an agency may take part in a network's case: a training agency only in training ones."""
    return is_training_agency(policies, agency_id) == is_training_network(policies, network_id)


def mixed_agreements(agreements: Mapping[str, Agreement], networks: Mapping[str, Network]) -> dict[str, str]:
    """Agreements naming a training and a real network at once, with why each is refused."""
    refused = {}
    for agreement in agreements.values():
        training = sorted(n for n in agreement.networks if n in networks and networks[n].training)
        real = sorted(n for n in agreement.networks if n not in training)
        if training and real:
            refused[agreement.id] = (
                f"names training network {training[0]!r} and real network {real[0]!r}: a training network "
                "shares no agreement with a real one"
            )
    return refused


def shared_agencies(agreements: Mapping[str, Agreement], networks: Mapping[str, Network]) -> dict[str, str]:
    """Training networks one of whose agencies is also a member of a real network, with why each is refused.

    Members as `PolicySet` counts them: declared members, the coordinator, and the parties of an
    agreement of that one network.
    """
    members: dict[str, set[str]] = {}
    for network in networks.values():
        members.setdefault(network.id, set()).update(network.members)
        if network.coordinator:
            members[network.id].add(network.coordinator)
    for agreement in agreements.values():
        if len(agreement.networks) == 1:
            members.setdefault(next(iter(agreement.networks)), set()).update(agreement.parties)
    training = {n for n in members if n in networks and networks[n].training}
    refused = {}
    for network_id in sorted(training):
        for real_id in sorted(set(members) - training):
            both = sorted(members[network_id] & members[real_id])
            if both:
                refused[network_id] = (
                    f"agency {both[0]!r} is a member of training network {network_id!r} and of real network "
                    f"{real_id!r}: a training network shares no agency with a real one"
                )
                break
    return refused
