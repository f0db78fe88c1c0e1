"""An immutable snapshot of the agreements in force, with its decision index."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from app.policy.index import PolicyIndex
from app.policy.model import Agreement


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Agreements by id (sorted); build with `PolicySet.of(...)`."""

    agreements: Mapping[str, Agreement]
    index: PolicyIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = dict(sorted(self.agreements.items()))
        object.__setattr__(self, "agreements", MappingProxyType(ordered))
        object.__setattr__(self, "index", PolicyIndex(ordered.values()))

    @classmethod
    def of(cls, agreements: Iterable[Agreement]) -> "PolicySet":
        return cls({a.id: a for a in agreements})

    def __iter__(self) -> Iterator[Agreement]:
        return iter(self.agreements.values())

    def __len__(self) -> int:
        return len(self.agreements)

    def get(self, agreement_id: str) -> Agreement | None:
        return self.agreements.get(agreement_id)
