"""The finite attribute space of a set of agreements, split exactly into equivalence classes.

A decision depends on the caller only through which rules' audiences (and training requirements)
it meets and which agreements its agency is a party to, and on the record only through which rules'
conditions hold (and, for a note, its classification).  A value no rule names behaves like every
other such value, so each dimension is enumerated as the values some rule names plus one
representative "other" value; callers and records are then grouped by the rules they meet.  The
engine itself (`decide`) is asked once per class, so the analysis is exactly what the engine does.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from itertools import chain, combinations, product
from math import prod
from typing import Any

from app.policy.build import NETWORK_CONDITION
from app.policy.decision import AttributeValue, Caller, Record
from app.policy.engine import decide
from app.policy.matching import conditions_failure
from app.policy.model import Agreement, Audience, Conditions
from app.policy.policy_set import PolicySet
from app.policy.vocabulary import FLAGS, MANY_VALUED, RECORD_VALUES, SECTORS, RecordKind

KINDS: tuple[RecordKind, ...] = ("referral", "note", "statistics")
OTHER_AGENCY = "~other-agency"  # an agency party to no agreement
OTHER_NETWORK = "~other-network"  # a record of a network no agreement decides
OTHER_PURPOSE = "~undeclared"  # a purpose no agreement declares
OTHER_COURSE = "~other-course"  # a course no rule requires


def field_name(kind: RecordKind, item: str) -> str:
    """A view item as a field of the space: referral fields as is, `notes.<class>`, `statistics.<dim>`."""
    return item if kind == "referral" else f"{'notes' if kind == 'note' else 'statistics'}.{item}"


@dataclass(frozen=True, slots=True)
class CallerShape:
    agency: str
    sector: str
    roles: frozenset[str]
    relations: frozenset[str]
    trained: frozenset[str]

    def caller(self) -> Caller:
        return Caller("policy-space", self.agency, self.sector, self.roles, self.relations, self.trained)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "sector": self.sector,
            "roles": sorted(self.roles),
            "relations": sorted(self.relations),
            "trained": sorted(self.trained),
        }

    def __str__(self) -> str:
        parts = [f"agency={self.agency}", f"sector={self.sector}", f"roles=[{','.join(sorted(self.roles))}]"]
        parts.append(f"relations=[{','.join(sorted(self.relations))}]")
        if self.trained:
            parts.append(f"trained=[{','.join(sorted(self.trained))}]")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class RecordShape:
    """A record; an attribute left out is missing (a condition on it fails, a deny's holds)."""

    kind: RecordKind
    attributes: tuple[tuple[str, AttributeValue], ...]

    def record(self) -> Record:
        return Record(self.kind, dict(self.attributes))

    def to_dict(self) -> dict[str, Any]:
        values = {k: sorted(v) if isinstance(v, frozenset) else v for k, v in self.attributes}
        return {"kind": self.kind, **values}

    def __str__(self) -> str:
        shown = (f"{k}=[{','.join(sorted(v))}]" if isinstance(v, frozenset) else f"{k}={v}" for k, v in self.attributes)
        return " ".join([f"kind={self.kind}", *shown])


@dataclass(frozen=True, slots=True)
class Grant:
    """What one request (the default view, or a named one) lets leave."""

    view: str
    fields: frozenset[str]
    agreement_id: str | None
    rule_ids: tuple[str, ...]
    special_category_condition: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A class's answer: every grant over the default and each named view, and their fields."""

    grants: tuple[Grant, ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(chain.from_iterable(g.fields for g in self.grants))

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(chain.from_iterable(g.rule_ids for g in self.grants)))


NOTHING = Outcome(())


@dataclass(frozen=True, slots=True)
class Cell:
    """One class of the space: (caller class, purpose, record class), by representatives."""

    caller: CallerShape
    purpose: str
    record: RecordShape
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Dimensions:
    """The values each dimension takes in the reduced space (named values and one of the others)."""

    agencies: tuple[str, ...]
    sectors: tuple[str, ...]
    roles: tuple[str, ...]
    relations: tuple[str, ...]
    courses: tuple[str, ...]
    purposes: tuple[str, ...]
    record_values: dict[RecordKind, tuple[tuple[str, tuple[AttributeValue | None, ...]], ...]]

    @classmethod
    def of(
        cls, sets: Sequence[PolicySet], probes: Sequence[Audience] = (), record_probes: Sequence[Conditions] = ()
    ) -> "Dimensions":
        agreements = [a for s in sets for a in s]
        audiences = [*(a for agreement in agreements for a in _audiences(agreement)), *probes]
        named_agencies = set(chain.from_iterable(a.agencies or () for a in audiences))
        sectors = set(chain.from_iterable(a.sectors or () for a in audiences))
        others = sorted(SECTORS - sectors)
        courses = {c for a in agreements for p in a.all_permits for c in p.requires_training}
        purposes = {p for a in agreements for p in _purposes(a)}
        return cls(
            agencies=_agencies(sets, named_agencies),
            sectors=tuple(sorted(sectors)) + tuple(others[:1]),
            roles=tuple(sorted(set(chain.from_iterable(a.roles or () for a in audiences)))),
            relations=tuple(sorted(set(chain.from_iterable(a.relations or () for a in audiences)))),
            courses=tuple(sorted(courses)),
            purposes=tuple(sorted(purposes)) + (OTHER_PURPOSE,),
            record_values={kind: _record_values(agreements, kind, record_probes) for kind in KINDS},
        )

    @property
    def points(self) -> int:
        """How many (caller, purpose, record) points the reduced space has."""
        flags = len(self.roles) + len(self.relations) + len(self.courses)
        callers: int = len(self.agencies) * len(self.sectors) * 2**flags
        records = sum(prod(len(values) for _, values in self.record_values[kind]) for kind in KINDS)
        return callers * len(self.purposes) * records


def _audiences(agreement: Agreement) -> Iterator[Audience]:
    yield from (p.audience for p in agreement.all_permits)
    yield from (d.audience for d in agreement.denies)


def _purposes(agreement: Agreement) -> set[str]:
    return {*agreement.purposes, *(agreement.emergency.purposes if agreement.emergency else ())}


def _agencies(sets: Sequence[PolicySet], named: set[str]) -> tuple[str, ...]:
    """One agency per group with the same agreements in every set; a named agency is its own group."""
    parties = sorted({p for s in sets for a in s for p in a.party_set})
    groups: dict[object, str] = {}
    for agency in parties:
        parties_in = tuple(frozenset(a.id for a in s if agency in a.party_set) for s in sets)
        key = (agency if agency in named else None, parties_in)
        groups.setdefault(key, agency)
    return tuple(groups.values()) + (OTHER_AGENCY,)


def _record_values(
    agreements: list[Agreement], kind: RecordKind, probes: Sequence[Conditions]
) -> tuple[tuple[str, tuple[AttributeValue | None, ...]], ...]:
    """Per attribute some rule of `kind` (or a probe) names: the named values, one other, and missing."""
    named: dict[str, set[str]] = {}
    for agreement in agreements:
        rules = [(p.view.kind, p.when) for p in agreement.all_permits] + [(d.kind, d.when) for d in agreement.denies]
        rules += [(kind, when) for when in probes]
        for rule_kind, when in rules:
            if rule_kind == kind:
                for key, allowed in when:
                    named.setdefault(key, set()).update(allowed)
    if kind == "note":
        named.setdefault("classification", set()).update(RECORD_VALUES["classification"])
    found: list[tuple[str, tuple[AttributeValue | None, ...]]] = []
    for key in sorted(named):
        values = tuple(sorted(named[key]))
        known = RECORD_VALUES.get(key, frozenset())
        if key == NETWORK_CONDITION:
            found.append((key, (*values, OTHER_NETWORK)))
        elif key in FLAGS or key == "classification":
            found.append((key, tuple(sorted(known or values))))
        elif key in MANY_VALUED:
            other = sorted(known - set(values))[:1]
            found.append((key, (None, *(frozenset(s) for s in _subsets(values + tuple(other)) if s))))
        else:
            other = sorted(known - set(values))[:1]
            found.append((key, (None, *values, *other)))
    return tuple(found)


def _subsets(values: tuple[str, ...]) -> Iterator[frozenset[str]]:
    return (frozenset(c) for c in chain.from_iterable(combinations(values, n) for n in range(len(values) + 1)))


CallerSignature = tuple[tuple[bool, ...], int, int]  # agreements it is party to; permits, denies it meets
RecordSignature = tuple[AttributeValue | None, int, int]  # classification; permits, denies that hold


class Signatures:
    """Which rules of one policy set a caller's audience meets and a record's conditions satisfy.

    A caller's signature is the AND of an agency-and-sector part and a roles-relations-training
    part, so the two are worked out separately and combined.
    """

    def __init__(self, policy_set: PolicySet, now: date) -> None:
        self.policy_set = policy_set
        self.now = now
        self.agreements = tuple(a for a in policy_set if a.in_force(now))
        self.permits = [(a, p) for a in self.agreements for p in a.all_permits if not p.audience.is_empty]
        self.denies = [(a, d) for a in self.agreements for d in a.denies]
        # Per (purpose, kind): the permits that could grant it.
        self.serving: dict[tuple[str, RecordKind], int] = {}
        for i, (_, permit) in enumerate(self.permits):
            for purpose in permit.purposes:
                key = (purpose, permit.view.kind)
                self.serving[key] = self.serving.get(key, 0) | 1 << i

    def blocking(self, purpose: str, kind: RecordKind) -> int:
        """The denies that may take part in deciding `purpose` on a `kind` record."""
        return _bits(d.kind == kind and (d.purposes is None or purpose in d.purposes) for _, d in self.denies)

    def where(self, agency: str, sector: str) -> CallerSignature:
        parties = tuple(agency in a.party_set for a in self.agreements)
        return (
            parties,
            _bits(
                agency in a.party_set
                and (p.audience.agencies is None or agency in p.audience.agencies)
                and (p.audience.sectors is None or sector in p.audience.sectors)
                for a, p in self.permits
            ),
            _bits(
                agency in a.party_set
                and (d.audience.agencies is None or agency in d.audience.agencies)
                and (d.audience.sectors is None or sector in d.audience.sectors)
                for a, d in self.denies
            ),
        )

    def who(self, roles: frozenset[str], relations: frozenset[str], trained: frozenset[str]) -> tuple[int, int]:
        return (
            _bits(
                _member(p.audience, roles, relations) and p.requires_training <= trained for _, p in self.permits
            ),
            _bits(_member(d.audience, roles, relations) for _, d in self.denies),
        )

    def masks(self, kind: RecordKind, key: str, value: AttributeValue | None) -> tuple[int, int]:
        """The permits and denies of `kind` whose condition on `key` holds for `value` (or are silent)."""
        attributes = {} if value is None else {key: value}
        return (
            _bits(
                p.view.kind == kind and conditions_failure(_on(p.when, key), attributes, missing_holds=False) is None
                for _, p in self.permits
            ),
            _bits(
                d.kind == kind and conditions_failure(_on(d.when, key), attributes, missing_holds=True) is None
                for _, d in self.denies
            ),
        )


def _on(when: Conditions, key: str) -> Conditions:
    return tuple((k, v) for k, v in when if k == key)


def _matches(audience: Audience, shape: CallerShape) -> bool:
    return (
        (audience.agencies is None or shape.agency in audience.agencies)
        and (audience.sectors is None or shape.sector in audience.sectors)
        and _member(audience, shape.roles, shape.relations)
    )


def _member(audience: Audience, roles: frozenset[str], relations: frozenset[str]) -> bool:
    return (audience.roles is None or not audience.roles.isdisjoint(roles)) and (
        audience.relations is None or not audience.relations.isdisjoint(relations)
    )


def _bits(flags: Iterable[bool]) -> int:
    return sum(1 << i for i, flag in enumerate(flags) if flag)


CallerClass = tuple[CallerShape, tuple[CallerSignature, ...], int]  # and which probes it meets
RecordClass = tuple[RecordShape, tuple[RecordSignature, ...], AttributeValue | None, int]  # network, probes


def caller_classes(
    dimensions: Dimensions, signatures: Sequence[Signatures], probes: Sequence[Audience] = ()
) -> list[CallerClass]:
    """One representative caller per joint signature (in every set, and which `probes` it meets)."""
    wheres = [
        ((agency, sector), [s.where(agency, sector) for s in signatures])
        for agency, sector in product(dimensions.agencies, dimensions.sectors)
    ]
    whos = [
        ((roles, relations, trained), [s.who(roles, relations, trained) for s in signatures])
        for roles, relations, trained in product(
            _subsets(dimensions.roles), _subsets(dimensions.relations), _subsets(dimensions.courses)
        )
    ]
    seen: dict[tuple[tuple[CallerSignature, ...], int], CallerShape] = {}
    for (agency, sector), places in wheres:
        for (roles, relations, trained), members in whos:
            key = tuple(
                (parties, permits & p, denies & d)
                for (parties, permits, denies), (p, d) in zip(places, members, strict=True)
            )
            shape = CallerShape(agency, sector, roles, relations, trained)
            seen.setdefault((key, _bits(_matches(probe, shape) for probe in probes)), shape)
    return [(shape, key, met) for (key, met), shape in seen.items()]


def record_classes(
    dimensions: Dimensions, signatures: Sequence[Signatures], probes: Sequence[Conditions] = ()
) -> list[RecordClass]:
    """One representative record per joint signature: per attribute value the rules it satisfies, ANDed.

    Records are told apart by their network too, and by which `probes` they meet.
    """
    seen: dict[tuple[RecordKind, tuple[RecordSignature, ...], AttributeValue | None, int], RecordShape] = {}
    for kind in KINDS:
        columns = dimensions.record_values[kind]
        everything = [((1 << len(s.permits)) - 1, (1 << len(s.denies)) - 1) for s in signatures]
        options = [
            [(value, [s.masks(kind, key, value) for s in signatures]) for value in values] for key, values in columns
        ]
        for chosen in product(*options):
            masks = list(everything)
            for _, per_set in chosen:
                masks = [(p & q, d & e) for (p, d), (q, e) in zip(masks, per_set, strict=True)]
            attributes = dict(
                (key, value) for (key, _), (value, _) in zip(columns, chosen, strict=True) if value is not None
            )
            given = attributes.get("classification") if kind == "note" else None
            met = _bits(conditions_failure(when, attributes, missing_holds=False) is None for when in probes)
            key = (kind, tuple((given, p, d) for p, d in masks), attributes.get(NETWORK_CONDITION), met)
            seen.setdefault(key, RecordShape(kind, tuple(attributes.items())))
    return [(shape, key, network, met) for (_, key, network, met), shape in seen.items()]


def outcome(
    policy_set: PolicySet, caller: Caller, purpose: str, record: Record, now: date, views: Sequence[str] | None = None
) -> Outcome:
    """Every grant the engine makes for the default view and for each named view of the record's kind.

    `views`: the names to try (default: every view of the record's kind in `policy_set`).
    """
    names = view_names(policy_set, record.kind) if views is None else views
    grants: dict[Grant, None] = {}
    given = record.attributes.get("classification") if record.kind == "note" else None
    for name in (None, *names):
        decision = decide(policy_set, caller, purpose, record, name, now=now)
        if name is None and decision.reason_code == "no_rule":
            break  # no permit matched: no named view is granted either
        if not decision.permit:
            continue
        if record.kind == "note":
            fields = frozenset({field_name("note", given)}) if isinstance(given, str) else frozenset()
        else:
            fields = _fields(record.kind, decision.fields)
        grant = Grant(
            decision.view or "", fields, decision.agreement_id, decision.rule_ids, decision.special_category_condition
        )
        grants[grant] = None
    return Outcome(tuple(grants))


def view_names(policy_set: PolicySet, kind: RecordKind) -> tuple[str, ...]:
    return tuple(sorted({v for a in policy_set for v, view in a.views.items() if view.kind == kind}))


@lru_cache(maxsize=4096)
def _fields(kind: RecordKind, items: frozenset[str]) -> frozenset[str]:
    return frozenset(field_name(kind, item) for item in items)


@dataclass(frozen=True, slots=True)
class Space:
    """The classes of one or more policy sets over their shared dimensions, each set at its date.

    `callers` and `records` are the classes over every rule; a decision on one purpose and kind
    only looks at that bucket's rules, so `groups` merges them further per purpose and kind.
    """

    dimensions: Dimensions
    signatures: tuple[Signatures, ...]
    callers: tuple[CallerClass, ...]
    records: tuple[RecordClass, ...]

    @classmethod
    def of(
        cls,
        sets: Sequence[tuple[PolicySet, date]],
        probes: Sequence[Audience] = (),
        record_probes: Sequence[Conditions] = (),
    ) -> "Space":
        """The classes of `sets`, each also split by which `probes` (audiences, record conditions) it meets."""
        dimensions = Dimensions.of([s for s, _ in sets], probes, record_probes)
        signatures = tuple(Signatures(s, now) for s, now in sets)
        return cls(
            dimensions,
            signatures,
            tuple(caller_classes(dimensions, signatures, probes)),
            tuple(record_classes(dimensions, signatures, record_probes)),
        )

    def groups(self, purpose: str, kind: RecordKind) -> tuple[list[CallerClass], list[RecordClass]]:
        """The classes for one purpose and record kind: told apart only by the rules that decide it there."""
        masks = [(s.serving.get((purpose, kind), 0), s.blocking(purpose, kind)) for s in self.signatures]
        callers: dict[object, CallerClass] = {}
        for caller in self.callers:
            shape, key, met = caller
            meets = tuple(
                (parties, permits & p, denies & d)
                for (parties, permits, denies), (p, d) in zip(key, masks, strict=True)
            )
            callers.setdefault((meets, met), (shape, meets, met))
        records: dict[object, RecordClass] = {}
        for record in self.records:
            kept, held, network, met = record
            if kept.kind != kind:
                continue
            holds = tuple(
                (given, holding & p, denying & d)
                for (given, holding, denying), (p, d) in zip(held, masks, strict=True)
            )
            records.setdefault((holds, network, met), (kept, holds, network, met))
        return list(callers.values()), list(records.values())

    @property
    def size(self) -> int:
        """How many classes: per purpose and kind, caller classes × record classes."""
        return sum(len(c) * len(r) for c, r in (self.groups(p, k) for p in self.dimensions.purposes for k in KINDS))

    def cells(self, which: int = 0) -> Iterator[Cell]:
        """Every class that the `which`-th set grants something in, with the engine's outcome.

        A class whose caller meets no permit serving the purpose and kind, or whose record
        meets none of the permits the caller does, is granted nothing: it is skipped.  Classes
        told apart only by probes or by the other sets share their outcome, worked out once.
        """
        signatures = self.signatures[which]
        views = {kind: view_names(signatures.policy_set, kind) for kind in KINDS}
        for purpose in self.dimensions.purposes:
            for kind in KINDS:
                callers, records = self.groups(purpose, kind)
                known: dict[tuple[object, ...], Outcome] = {}
                for caller, caller_key, _ in callers:
                    mine = caller_key[which]
                    if not mine[1]:
                        continue
                    asking = caller.caller()
                    for record, record_key, _, _ in records:
                        theirs = record_key[which]
                        if not mine[1] & theirs[1]:
                            continue
                        key = (mine, theirs)
                        found = known.get(key)
                        if found is None:
                            found = known[key] = outcome(
                                signatures.policy_set, asking, purpose, record.record(), signatures.now, views[kind]
                            )
                        if found.grants:
                            yield Cell(caller, purpose, record, found)


def analyse(policy_set: PolicySet, now: date) -> Space:
    return Space.of([(policy_set, now)])
