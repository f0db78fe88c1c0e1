"""The agreements in force: an immutable snapshot swapped atomically on reload."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.policy.fields import REFERRAL_FIELDS
from app.policy.loader import LoadResult, load_agreements, parse_stored
from app.policy.model import Agreement
from app.policy.policy_set import PolicySet, Proposed

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

Parse = Callable[[bytes, str], Agreement | None]


@dataclass(frozen=True, slots=True)
class Gated:
    """What a signature ledger admits of the loaded agreements."""

    in_force: list[Agreement]
    proposed: list[Proposed]
    warnings: list[str] = field(default_factory=list)


class SignatureGate(Protocol):
    """Decides which loaded versions are signed (app.agreements.ledger keeps them in the database)."""

    def gate(self, loaded: PolicySet, texts: Mapping[str, bytes], parse: Parse, session: Session | None) -> Gated:
        ...

    def fingerprint(self) -> object:
        """Changes whenever a signature is recorded (by any process)."""
        ...


class PolicyStore:
    """Readers take `current` without locking; reloads are serialised and swap one reference.

    When a file that provided an agreement is now broken, the previous version of
    that agreement stays in force until the file is fixed.  With a signature gate, `current`
    holds only the signed versions (a newer proposed one leaves the last signed one in force),
    and `loaded` what the files say; without one (unit tests of the loader) the two are the same.
    """

    def __init__(
        self,
        known_fields: frozenset[str] = REFERRAL_FIELDS,
        known_agencies: Collection[str] | None = None,
        gate: SignatureGate | None = None,
    ) -> None:
        self._known_fields = known_fields
        self._known_agencies = known_agencies
        self._gate = gate
        self._lock = threading.Lock()
        self._current = PolicySet.of(())
        self._loaded = self._current
        self._texts: dict[str, bytes] = {}

    @property
    def current(self) -> PolicySet:
        return self._current

    @property
    def loaded(self) -> PolicySet:
        """The versions the files hold, signed or not."""
        return self._loaded

    def signatures_fingerprint(self) -> object:
        """What the watcher compares to notice signatures made in another process (None: no gate)."""
        return None if self._gate is None else self._gate.fingerprint()

    def parse(self, content: bytes, source: str) -> Agreement | None:
        """A stored version's text as this store would load it."""
        return parse_stored(content, source, self._known_fields, self._known_agencies)

    def reload(self, directory: str | Path, session: Session | None = None) -> LoadResult:
        with self._lock:
            result = load_agreements(directory, self._known_fields, self._known_agencies)
            previous = self._loaded
            if not Path(directory).is_dir():
                # A missing folder is an operator error, not a decision to revoke everything.
                return replace(result, policy_set=self._current)
            fresh = dict(result.policy_set.agreements)
            texts = dict(result.texts)
            by_source = {a.source: a.id for a in previous}
            warnings = list(result.warnings)
            for error in result.errors:
                agreement_id = error.agreement or by_source.get(error.file)
                kept = previous.get(agreement_id) if agreement_id else None
                if kept is not None and agreement_id not in fresh:
                    fresh[kept.id] = kept
                    texts[kept.id] = self._texts[kept.id]
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
            self._loaded, self._texts = PolicySet.of(fresh.values(), declared.values()), texts
            snapshot, notes = self._gated(self._loaded, texts, session)
            self._current = snapshot
            return replace(result, policy_set=snapshot, warnings=warnings + notes, texts=texts)

    def refresh(self, session: Session | None = None) -> PolicySet:
        """Ask the gate again (after a signature, here or in another process); the files are not re-read."""
        # Not under the lock: a reload waiting on this request's database lock would wait on us.
        loaded, texts = self._loaded, self._texts
        snapshot, _ = self._gated(loaded, texts, session)
        with self._lock:
            if self._loaded is loaded:
                self._current = snapshot
            return self._current

    def _gated(
        self, loaded: PolicySet, texts: Mapping[str, bytes], session: Session | None
    ) -> tuple[PolicySet, list[str]]:
        if self._gate is None:
            return loaded, []
        outcome = self._gate.gate(loaded, texts, self.parse, session)
        return PolicySet.of(outcome.in_force, loaded.declared.values(), outcome.proposed), outcome.warnings
