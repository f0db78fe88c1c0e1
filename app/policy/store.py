"""The agreements in force: an immutable snapshot swapped atomically on reload."""

import threading
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

from app.policy.fields import REFERRAL_FIELDS
from app.policy.loader import LoadResult, load_agreements
from app.policy.model import Agreement
from app.policy.policy_set import PolicySet


class PolicyStore:
    """Readers take `current` without locking; reloads are serialised and swap one reference.

    When a file that provided an agreement is now broken, the previous version of
    that agreement stays in force until the file is fixed.
    """

    def __init__(
        self,
        known_fields: frozenset[str] = REFERRAL_FIELDS,
        known_agencies: Collection[str] | None = None,
    ) -> None:
        self._known_fields = known_fields
        self._known_agencies = known_agencies
        self._lock = threading.Lock()
        self._current = PolicySet.of(())

    @property
    def current(self) -> PolicySet:
        return self._current

    def reload(self, directory: str | Path) -> LoadResult:
        with self._lock:
            result = load_agreements(directory, self._known_fields, self._known_agencies)
            previous = self._current
            if not Path(directory).is_dir():
                # A missing folder is an operator error, not a decision to revoke everything.
                return replace(result, policy_set=previous)
            fresh = dict(result.policy_set.agreements)
            by_source = {a.source: a.id for a in previous}
            warnings = list(result.warnings)
            for error in result.errors:
                agreement_id = error.agreement or by_source.get(error.file)
                kept = previous.get(agreement_id) if agreement_id else None
                if kept is not None and agreement_id not in fresh:
                    fresh[kept.id] = kept
                    warnings.append(
                        f"{error.file}: kept version {kept.version} of {kept.id} in force"
                        " because the new file is broken"
                    )
            declared = dict(result.policy_set.declared)
            by_network_source = {n.source: n for n in previous.declared.values()}
            for error in result.errors:
                kept_network = by_network_source.get(error.file)
                if kept_network is not None and kept_network.id not in declared:
                    declared[kept_network.id] = kept_network
                    warnings.append(
                        f"{error.file}: kept network {kept_network.id} in force because the new file is broken"
                    )
            snapshot = PolicySet.of(fresh.values(), declared.values())
            self._current = snapshot
            return replace(result, policy_set=snapshot, warnings=warnings)

    def replace_with(self, agreements: Collection[Agreement]) -> PolicySet:
        """Install agreements directly (tests, or a caller that parsed them itself)."""
        with self._lock:
            self._current = PolicySet.of(agreements)
            return self._current
