"""What a new version of an agreement newly grants and newly withholds, class by class, exactly.

Both versions are analysed over one shared space (`app.policy.space`): every caller shape,
purpose and record shape either names is split into classes that both versions treat alike
within, and each version's engine is asked once per class.  A pure function of the two
agreements, remembered by their content hashes, so the console can show it beside signatures.
"""

from dataclasses import dataclass
from typing import Any

from app.policy.index import Memo
from app.policy.model import Agreement
from app.policy.policy_set import PolicySet
from app.policy.space import CallerShape, RecordShape, Space


@dataclass(frozen=True, slots=True)
class ClassChange:
    """One (caller, purpose, record) class whose fields change, by its representatives."""

    caller: CallerShape
    purpose: str
    record: RecordShape
    old_rules: tuple[str, ...]
    new_rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "caller": self.caller.to_dict(),
            "purpose": self.purpose,
            "record": self.record.to_dict(),
            "old_rules": list(self.old_rules),
            "new_rules": list(self.new_rules),
        }


@dataclass(frozen=True, slots=True)
class ChangeGroup:
    """The classes that gain exactly `granted` and lose exactly `withheld`."""

    granted: tuple[str, ...]
    withheld: tuple[str, ...]
    classes: tuple[ClassChange, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "newly_granted": list(self.granted),
            "newly_withheld": list(self.withheld),
            "classes": [c.to_dict() for c in self.classes],
        }


@dataclass(frozen=True, slots=True)
class AgreementDiff:
    old: str  # id@vN
    new: str
    groups: tuple[ChangeGroup, ...]
    classes_compared: int

    @property
    def changed(self) -> bool:
        return bool(self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "changed": self.changed,
            "classes_compared": self.classes_compared,
            "groups": [g.to_dict() for g in self.groups],
        }

    def to_markdown(self, examples: int = 3) -> str:
        """A readable summary: per group, what changes and a few of the classes it changes for."""
        lines = [f"# {self.old} → {self.new}", ""]
        if not self.groups:
            lines.append(f"No change in what leaves, over {self.classes_compared} classes.")
            return "\n".join(lines) + "\n"
        for group in self.groups:
            if group.granted:
                lines.append(f"- **newly granted**: {', '.join(group.granted)}")
            if group.withheld:
                lines.append(f"- **newly withheld**: {', '.join(group.withheld)}")
            lines.append(f"  - for {len(group.classes)} class(es), e.g.:")
            for change in group.classes[:examples]:
                rules = f"rules {', '.join(change.old_rules) or '-'} → {', '.join(change.new_rules) or '-'}"
                lines.append(f"    - {change.caller}; purpose {change.purpose}; {change.record}; {rules}")
        return "\n".join(lines) + "\n"


_MEMO: Memo[tuple[str, ...], AgreementDiff] = Memo(32)  # the console works diffs out per page view


def diff_agreements(old: Agreement, new: Agreement) -> AgreementDiff:
    """Every class whose granted fields differ between `old` and `new`, each in force on its first day."""
    key = (old.id, str(old.version), old.content_hash, new.id, str(new.version), new.content_hash)
    known = _MEMO.get(key)
    if known is None:
        known = _diff(old, new)  # two threads may both work it out, once each
        _MEMO.put(key, known)
    return known


def _diff(old: Agreement, new: Agreement) -> AgreementDiff:
    space = Space.of([(PolicySet.of([old]), old.effective_from), (PolicySet.of([new]), new.effective_from)])
    before = {(c.caller, c.purpose, c.record): c.outcome for c in space.cells(0)}
    after = {(c.caller, c.purpose, c.record): c.outcome for c in space.cells(1)}
    grouped: dict[tuple[tuple[str, ...], tuple[str, ...]], list[ClassChange]] = {}
    for key in sorted(before.keys() | after.keys(), key=lambda k: (str(k[0]), k[1], str(k[2]))):
        was, now = before.get(key), after.get(key)
        old_fields = was.fields if was else frozenset()
        new_fields = now.fields if now else frozenset()
        if old_fields == new_fields:
            continue
        caller, purpose, record = key
        change = ClassChange(
            caller, purpose, record, was.rule_ids if was else (), now.rule_ids if now else ()
        )
        grouped.setdefault(
            (tuple(sorted(new_fields - old_fields)), tuple(sorted(old_fields - new_fields))), []
        ).append(change)
    groups = tuple(
        ChangeGroup(granted, withheld, tuple(changes))
        for (granted, withheld), changes in sorted(grouped.items(), key=lambda g: (-len(g[1]), g[0]))
    )
    return AgreementDiff(f"{old.id}@v{old.version}", f"{new.id}@v{new.version}", groups, space.size)

