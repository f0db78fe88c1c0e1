"""Assertions about what an agreement lets leave, checked exactly over its whole attribute space.

A policy-test file may carry `assertions:` next to its cases (policies/README.md):

- `never: {to, unless, fields, purposes}`: no caller in the audience receives any of `fields`
  (for `purposes`);
- `only: {fields, to, unless, purposes, special_category_condition: true}`: `fields` go to nobody
  outside the audience, for no purpose outside `purposes`, and (with the flag) only from rules
  naming an Art. 9(2) condition;
- `always: {to, unless, fields, purposes, when}`: every caller of the audience that is a party
  receives all of `fields` for each of `purposes`, on every record meeting `when`.

The audience is `to` less the callers of any `unless` audience. Records are those of the networks
the file's agreement decides; callers are every caller shape of the space.
"""

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.policy.build import NETWORK_CONDITION
from app.policy.fields import (
    ALL_DIMENSIONS,
    DIRECT_IDENTIFIER_FIELDS,
    REFERRAL_FIELDS,
    SPECIAL_CATEGORY_CLASSIFICATIONS,
    SPECIAL_CATEGORY_DIMENSIONS,
    SPECIAL_CATEGORY_FIELDS,
    expand_field,
)
from app.policy.issues import did_you_mean
from app.policy.matching import conditions_failure
from app.policy.model import Agreement, Audience
from app.policy.policy_set import PolicySet
from app.policy.space import CallerShape, Cell, RecordShape, Space, field_name, outcome
from app.policy.vocabulary import RECORD_VALUES, SPECIAL_CATEGORY_CONDITIONS
from app.policy.yaml_nodes import YamlSyntaxError, parse_yaml

# `@name` in an assertion's fields stands for a group of fields.
FIELD_GROUPS: dict[str, frozenset[str]] = {
    "@direct_identifiers": DIRECT_IDENTIFIER_FIELDS,
    "@special_categories": SPECIAL_CATEGORY_FIELDS
    | {field_name("note", c) for c in SPECIAL_CATEGORY_CLASSIFICATIONS}
    | {field_name("statistics", d) for d in SPECIAL_CATEGORY_DIMENSIONS},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudienceSpec(_Strict):
    """Who an assertion is about: AND across keys, OR within one (as a rule's `to`); none: everyone."""

    agencies: list[str] | None = None
    sectors: list[str] | None = None
    roles: list[str] | None = None
    relations: list[str] | None = None

    def audience(self) -> Audience:
        def frozen(values: list[str] | None) -> frozenset[str] | None:
            return None if values is None else frozenset(values)

        return Audience(frozen(self.roles), frozen(self.sectors), frozen(self.agencies), frozen(self.relations))


class ClaimSpec(_Strict):
    to: AudienceSpec = AudienceSpec()
    unless: list[AudienceSpec] = []  # callers in `to` that are also in one of these are outside it
    fields: Annotated[list[str], Field(min_length=1)]
    purposes: list[str] | None = None

    def within(self, caller: CallerShape) -> bool:
        return _within(self.to.audience(), caller) and not any(_within(u.audience(), caller) for u in self.unless)

    def probes(self) -> list[Audience]:
        return [self.to.audience(), *(u.audience() for u in self.unless)]

    @model_validator(mode="after")
    def _known_fields(self) -> "ClaimSpec":
        wanted_fields(self.fields)
        return self


class OnlySpec(ClaimSpec):
    special_category_condition: bool = False


class AlwaysSpec(ClaimSpec):
    purposes: Annotated[list[str], Field(min_length=1)]
    when: dict[str, list[str]] = {}


class AssertionSpec(_Strict):
    """One assertion: exactly one of `never`, `only`, `always`, with an optional name."""

    name: str | None = None
    never: ClaimSpec | None = None
    only: OnlySpec | None = None
    always: AlwaysSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> "AssertionSpec":
        if sum(x is not None for x in (self.never, self.only, self.always)) != 1:
            raise ValueError("an assertion is exactly one of never, only, always")
        return self

    @property
    def kind(self) -> Literal["never", "only", "always"]:
        return "never" if self.never else "only" if self.only else "always"

    @property
    def claim(self) -> ClaimSpec:
        found = self.never or self.only or self.always
        assert found is not None
        return found

    def title(self) -> str:
        claim = self.claim
        return self.name or f"{self.kind} {', '.join(claim.fields)}"


class AssertionsFile(BaseModel):
    """The parts of a policy-test file `prove` reads (its cases are `policy test`'s)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    agreement: str
    now: date | None = None
    assertions: list[AssertionSpec] = []


def known_fields() -> frozenset[str]:
    """Every field of the space: referral fields, `notes.<classification>`, `statistics.<dimension>`."""
    notes = {field_name("note", c) for c in RECORD_VALUES["classification"]}
    return REFERRAL_FIELDS | notes | {field_name("statistics", d) for d in ALL_DIMENSIONS}


def wanted_fields(patterns: Iterable[str]) -> frozenset[str]:
    """Field names with `@groups` and `prefix.*` patterns expanded; an unknown name is an error."""
    known = known_fields()
    found: set[str] = set()
    for pattern in patterns:
        expanded = FIELD_GROUPS.get(pattern) or expand_field(pattern, known)
        if not expanded:
            raise ValueError(f"unknown field {pattern!r}{did_you_mean(pattern, known)}")
        found |= expanded
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Counterexample:
    caller: CallerShape
    purpose: str
    record: RecordShape
    rule_ids: tuple[str, ...]
    fields: tuple[str, ...]
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "caller": self.caller.to_dict(),
            "purpose": self.purpose,
            "record": self.record.to_dict(),
            "rule_ids": list(self.rule_ids),
            "fields": list(self.fields),
            "problem": self.problem,
        }

    def __str__(self) -> str:
        return (
            f"{self.problem}: caller {self.caller}; purpose {self.purpose}; record {self.record};"
            f" rules {', '.join(self.rule_ids) or '-'}; fields {', '.join(self.fields) or '-'}"
        )


@dataclass(frozen=True, slots=True)
class AssertionResult:
    file: str
    agreement: str
    name: str
    kind: str
    counterexample: Counterexample | None

    @property
    def ok(self) -> bool:
        return self.counterexample is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "agreement": self.agreement,
            "assertion": self.name,
            "kind": self.kind,
            "ok": self.ok,
            "counterexample": None if self.counterexample is None else self.counterexample.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ProofReport:
    results: list[AssertionResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files that could not be read
    spaces: list[dict[str, Any]] = field(default_factory=list)  # per date: points and classes

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "results": [r.to_dict() for r in self.results],
            "problems": self.problems,
            "spaces": self.spaces,
        }


def prove(policy_set: PolicySet, tests_dir: str | Path) -> ProofReport:
    """Check every assertion of every policy-test file in `tests_dir` over the whole space."""
    folder = Path(tests_dir)
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")) if folder.is_dir() else []
    problems: list[str] = []
    groups: dict[tuple[date, frozenset[str]], list[tuple[Path, Agreement, AssertionSpec]]] = defaultdict(list)
    for path in paths:
        spec, problem = read_spec(path, AssertionsFile)
        if spec is None:
            problems.append(f"{path}: {problem}")
            continue
        agreement = policy_set.get(spec.agreement)
        if agreement is None:
            if spec.assertions:
                problems.append(f"{path}: agreement {spec.agreement} is not loaded")
            continue
        deciding = frozenset(a.id for a in policy_set if _shares_records(a, agreement))
        for assertion in spec.assertions:
            groups[(spec.now or agreement.effective_from, deciding)].append((path, agreement, assertion))
    results: list[AssertionResult] = []
    spaces: list[dict[str, Any]] = []
    for (day, deciding), items in sorted(groups.items(), key=lambda g: (g[0][0], sorted(g[0][1]))):
        # Only agreements deciding the same networks' records can grant anything on them.
        started = time.perf_counter()
        subset = PolicySet.of([a for a in policy_set if a.id in deciding], policy_set.declared.values())
        space = Space.of(
            [(subset, day)],
            probes=[probe for _, _, a in items for probe in a.claim.probes()],
            record_probes=[_when(a) for _, _, a in items],
        )
        cells = list(space.cells())
        for path, agreement, assertion in items:
            found = _check(assertion, agreement, space, cells, subset, day)
            results.append(AssertionResult(str(path), agreement.id, assertion.title(), assertion.kind, found))
        spaces.append({"on": day.isoformat(), "agreements": sorted(deciding), "points": space.dimensions.points,
                       "classes": space.size, "granting_classes": len(cells),
                       "seconds": round(time.perf_counter() - started, 3)})
    return ProofReport(results, problems, spaces)


def _shares_records(one: Agreement, other: Agreement) -> bool:
    return not one.networks or not other.networks or bool(one.networks & other.networks)


M = TypeVar("M", bound=BaseModel)


def read_spec(path: Path, model: type[M]) -> tuple[M | None, str]:
    """A policy-test file as `model`, or None and its first problem (for `policy test` and `policy prove`)."""
    try:
        return model.model_validate(parse_yaml(path.read_text("utf-8")).data), ""
    except YamlSyntaxError as exc:
        return None, f"line {exc.line}: {exc.reason}"
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return None, f"{where}: {first['msg']} ({exc.error_count()} problem(s))"


def _when(assertion: AssertionSpec) -> tuple[tuple[str, frozenset[str]], ...]:
    return tuple((k, frozenset(v)) for k, v in assertion.always.when.items()) if assertion.always else ()


def _of_networks(record: RecordShape, agreement: Agreement) -> bool:
    network = dict(record.attributes).get(NETWORK_CONDITION)
    return not agreement.networks or network in agreement.networks


def _check(
    assertion: AssertionSpec,
    agreement: Agreement,
    space: Space,
    cells: Sequence[Cell],
    policy_set: PolicySet,
    now: date,
) -> Counterexample | None:
    claim = assertion.claim
    wanted = wanted_fields(claim.fields)
    purposes = None if claim.purposes is None else frozenset(claim.purposes)
    if assertion.always is not None:
        return _always(assertion.always, wanted, agreement, space, policy_set, now)
    for cell in cells:
        if not _of_networks(cell.record, agreement):
            continue
        inside = claim.within(cell.caller)
        for_purpose = purposes is None or cell.purpose in purposes
        for grant in cell.outcome.grants:
            hit = grant.fields & wanted
            if not hit:
                continue
            if assertion.never is not None and inside and for_purpose:
                return _example(cell, grant.rule_ids, hit, "granted to a caller it must never reach")
            if assertion.only is not None:
                if not inside or not for_purpose:
                    return _example(cell, grant.rule_ids, hit, "granted outside the audience or purposes allowed")
                if assertion.only.special_category_condition and grant.special_category_condition not in (
                    SPECIAL_CATEGORY_CONDITIONS
                ):
                    return _example(cell, grant.rule_ids, hit, "granted by a rule naming no Art. 9(2) condition")
    return None


def _always(
    claim: AlwaysSpec,
    wanted: frozenset[str],
    agreement: Agreement,
    space: Space,
    policy_set: PolicySet,
    now: date,
) -> Counterexample | None:
    when = tuple((k, frozenset(v)) for k, v in claim.when.items())
    kinds = {_kind_of(f) for f in wanted}
    for purpose in claim.purposes:
        for kind in space.dimensions.record_values:
            if kind not in kinds:
                continue
            callers, records = space.groups(purpose, kind)
            for caller, _, _ in callers:
                if caller.agency not in agreement.party_set or not claim.within(caller):
                    continue
                for record, _, _, _ in records:
                    attributes = dict(record.attributes)
                    if not _of_networks(record, agreement):
                        continue
                    if conditions_failure(when, attributes, missing_holds=False) is not None:
                        continue
                    got = outcome(policy_set, caller.caller(), purpose, record.record(), now)
                    expected = frozenset(f for f in wanted if _kind_of(f) == kind)
                    if kind == "note":
                        given = attributes.get("classification")
                        expected = expected & {field_name("note", given)} if isinstance(given, str) else frozenset()
                    missing = expected - got.fields
                    if missing:
                        problem = "not granted although it always must be"
                        return Counterexample(caller, purpose, record, got.rule_ids, tuple(sorted(missing)), problem)
    return None


def _kind_of(name: str) -> str:
    head = name.split(".", 1)[0]
    return {"notes": "note", "statistics": "statistics"}.get(head, "referral")


def _within(audience: Audience, caller: CallerShape) -> bool:
    return not (
        (audience.agencies is not None and caller.agency not in audience.agencies)
        or (audience.sectors is not None and caller.sector not in audience.sectors)
        or (audience.roles is not None and audience.roles.isdisjoint(caller.roles))
        or (audience.relations is not None and audience.relations.isdisjoint(caller.relations))
    )


def _example(cell: Cell, rule_ids: tuple[str, ...], hit: frozenset[str], problem: str) -> Counterexample:
    return Counterexample(cell.caller, cell.purpose, cell.record, rule_ids, tuple(sorted(hit)), problem)
