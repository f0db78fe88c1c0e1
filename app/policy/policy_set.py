"""An immutable snapshot of the agreements in force, with its decision index."""

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from app.policy.index import PolicyIndex
from app.policy.model import Agreement, Network


@dataclass(frozen=True, slots=True)
class Proposed:
    """A loaded agreement version that decides nothing yet: it awaits the signatures of `missing`."""

    agreement_id: str
    version: int
    parties: frozenset[str]
    networks: frozenset[str]
    missing: tuple[str, ...]  # agencies, or "agency/person" for named signatories

    def __str__(self) -> str:
        return (f"agreement {self.agreement_id} version {self.version} is proposed:"
                f" awaiting the signatures of {', '.join(self.missing)}")


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Agreements and networks by id (sorted); build with `PolicySet.of(...)`.

    Every network an agreement names is in `networks`: declared ones with their coordinator
    and members, the others implicit (no coordinator; members are the agreements' parties).
    """

    agreements: Mapping[str, Agreement]
    declared: Mapping[str, Network] = field(default_factory=dict)
    # Versions loaded but not yet signed by every party (with a signature ledger; see PolicyStore).
    proposed: tuple[Proposed, ...] = ()
    index: PolicyIndex = field(init=False, repr=False, compare=False)
    networks: Mapping[str, Network] = field(init=False, repr=False, compare=False)
    _of_agency: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = dict(sorted(self.agreements.items()))
        object.__setattr__(self, "agreements", MappingProxyType(ordered))
        object.__setattr__(self, "index", PolicyIndex(ordered.values()))
        networks = _networks(ordered.values(), self.declared)
        object.__setattr__(self, "networks", MappingProxyType(networks))
        of_agency: dict[str, list[str]] = {}
        for network in networks.values():
            for agency in network.members:
                of_agency.setdefault(agency, []).append(network.id)
        object.__setattr__(
            self, "_of_agency", MappingProxyType({a: tuple(sorted(n)) for a, n in of_agency.items()})
        )

    @classmethod
    def of(
        cls, agreements: Iterable[Agreement], networks: Iterable[Network] = (), proposed: Iterable[Proposed] = ()
    ) -> "PolicySet":
        by_id, declared = {a.id: a for a in agreements}, {n.id: n for n in networks}
        pending = tuple(sorted(proposed, key=lambda p: p.agreement_id))
        # A reload of unchanged files yields the very same agreement objects (the loader's cache):
        # their snapshot, and its index, is then the one already built.  The entry holds the objects,
        # so their ids are not reused while it is kept: the same ids are the same objects.
        parts = (*by_id.values(), *declared.values())
        key = (frozenset(map(id, by_id.values())), frozenset(map(id, declared.values())), pending)
        with _BUILT_LOCK:
            built = _BUILT.get(key)
        if built is not None:
            return built[1]
        snapshot = cls(by_id, declared, pending)
        with _BUILT_LOCK:
            _BUILT[key] = (parts, snapshot)
            while len(_BUILT) > _BUILT_KEPT:
                del _BUILT[next(iter(_BUILT))]
        return snapshot

    def proposed_for(self, agency_id: str) -> tuple[Proposed, ...]:
        """The proposed versions an agency is a party to."""
        return tuple(p for p in self.proposed if agency_id in p.parties)

    def networks_of(self, agency_id: str) -> tuple[str, ...]:
        """The networks an agency is a member of (sorted)."""
        return self._of_agency.get(agency_id, ())

    def network(self, network_id: str) -> Network | None:
        return self.networks.get(network_id)

    def __iter__(self) -> Iterator[Agreement]:
        return iter(self.agreements.values())

    def __len__(self) -> int:
        return len(self.agreements)

    def get(self, agreement_id: str) -> Agreement | None:
        return self.agreements.get(agreement_id)


_BUILT_KEPT = 16
_BUILT_LOCK = threading.Lock()
_BUILT: dict[tuple[frozenset[int], frozenset[int], tuple[Proposed, ...]], tuple[tuple[object, ...], PolicySet]] = {}


def _networks(agreements: Iterable[Agreement], declared: Mapping[str, Network]) -> dict[str, Network]:
    """Declared networks, each with its agreements and their parties; implicit ones added."""
    agreements_of: dict[str, list[Agreement]] = {}
    for agreement in agreements:
        for network_id in agreement.networks:
            agreements_of.setdefault(network_id, []).append(agreement)
    found: dict[str, Network] = {}
    for network_id in sorted(set(declared) | set(agreements_of)):
        own = agreements_of.get(network_id, [])
        # Only an agreement of this one network makes its parties members; a national
        # agreement across networks shares aggregates and confers no membership.
        parties = frozenset(p for a in own if len(a.networks) == 1 for p in a.party_set)
        base = declared.get(network_id)
        if base is None:
            found[network_id] = Network(network_id, network_id, ("en",), None, parties,
                                        tuple(a.id for a in own), None)
        else:
            members = base.members | parties | ({base.coordinator} if base.coordinator else set())
            found[network_id] = replace(base, members=frozenset(members), agreements=tuple(a.id for a in own))
    return found
