"""Run the policy tests kept next to agreements and measure which rules they exercise."""

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from app.policy.decision import AttributeValue, Caller, Decision, Record, described_record, flag_value
from app.policy.engine import decide
from app.policy.policy_set import PolicySet
from app.policy.prove import AssertionSpec, read_spec
from app.policy.vocabulary import FLAGS, RecordKind

_KINDS: dict[str, RecordKind] = {"referral": "referral", "note": "note", "statistics": "statistics"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallerSpec(_Strict):
    agency: str
    sector: str
    roles: list[str] = []
    relations: list[str] = []
    training: list[str] = Field(default=[], description="The courses the caller holds, current.")
    client: str = "policy-test"


class Expectation(_Strict):
    decision: Literal["permit", "deny"]
    view: str | None = None
    rules: list[str] | None = None
    reason: str | None = None
    agreement: str | None = None


class CaseSpec(_Strict):
    name: str
    caller: CallerSpec
    purpose: str
    record: dict[str, StrictBool | str | list[str]] = {}
    view: str | None = None
    now: date | None = None
    expect: Expectation

    @field_validator("record")
    @classmethod
    def _flags_are_booleans(cls, record: dict[str, bool | str | list[str]]) -> dict[str, bool | str | list[str]]:
        """`invited` is true or false, and nothing else is a boolean (a YAML `yes` slipping in)."""
        for key, value in record.items():
            if (key in FLAGS) != isinstance(value, bool):
                raise ValueError(f"{key} is {'true or false' if key in FLAGS else 'a code or a list of codes'}")
        return record


class PolicyTestFile(_Strict):
    agreement: str
    now: date | None = None
    cases: Annotated[list[CaseSpec], Field(min_length=1)]
    assertions: list[AssertionSpec] = []  # checked over the whole space by `policy prove`


@dataclass(frozen=True, slots=True)
class CaseFailure:
    file: str
    case: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.case}: {self.message}"


@dataclass(frozen=True, slots=True)
class TestReport:
    """Outcome of every case, and per agreement how often each rule decided a case."""

    __test__: ClassVar[bool] = False  # not a pytest class

    passed: int
    failed: list[CaseFailure]
    coverage: dict[str, dict[str, int]]
    uncovered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": [{"file": f.file, "case": f.case, "message": f.message} for f in self.failed],
            "coverage": self.coverage,
            "uncovered": self.uncovered,
        }


def run_policy_tests(policy_set: PolicySet, tests_dir: str | Path) -> TestReport:
    coverage = {a.id: {rule_id: 0 for rule_id in a.rule_ids()} for a in policy_set}
    passed = 0
    failed: list[CaseFailure] = []
    folder = Path(tests_dir)
    files = (
        sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
        if folder.is_dir()
        else []
    )
    for path in files:
        spec, problem = read_spec(path, PolicyTestFile)
        if spec is None:
            failed.append(CaseFailure(str(path), "-", problem))
            continue
        agreement = policy_set.get(spec.agreement)
        if agreement is None:
            failed.append(CaseFailure(str(path), "-", f"agreement {spec.agreement} is not loaded"))
            continue
        for case in spec.cases:
            now = case.now or spec.now or agreement.effective_from
            decision = decide(
                policy_set,
                _caller(case.caller),
                case.purpose,
                _record(case.record, agreement.networks),
                case.view,
                now=now,
            )
            if decision.agreement_id in coverage:
                hits = coverage[decision.agreement_id]
                for rule_id in decision.rule_ids:
                    hits[rule_id] = hits.get(rule_id, 0) + 1
            mismatch = _mismatch(case.expect, decision)
            if mismatch:
                failed.append(CaseFailure(str(path), case.name, mismatch))
            else:
                passed += 1
    uncovered = {
        agreement_id: [rule_id for rule_id, hits in rules.items() if hits == 0]
        for agreement_id, rules in coverage.items()
    }
    return TestReport(passed, failed, coverage, {k: v for k, v in uncovered.items() if v})


def _caller(spec: CallerSpec) -> Caller:
    return Caller(
        spec.client, spec.agency, spec.sector, frozenset(spec.roles), frozenset(spec.relations),
        frozenset(spec.training),
    )


def _record(attributes: dict[str, bool | str | list[str]], networks: frozenset[str]) -> Record:
    """The case's record; of the agreement's own network unless the case names another.

    A list (`concerns: [a, b]`) is the set of the record's values of a many-valued attribute;
    `invited: true` a read through a meeting's agenda item (default false, as on other reads).
    """
    fields: dict[str, AttributeValue] = {
        key: frozenset(value) if isinstance(value, list) else flag_value(value) if isinstance(value, bool) else value
        for key, value in attributes.items()
    }
    kind_given = fields.pop("kind", "referral")
    kind = _KINDS.get(kind_given if isinstance(kind_given, str) else "", "referral")
    if "network" not in fields and len(networks) == 1:
        fields["network"] = next(iter(networks))
    return described_record(kind, fields)


def _mismatch(expect: Expectation, decision: Decision) -> str | None:
    got = "permit" if decision.permit else "deny"
    problems = []
    if got != expect.decision:
        problems.append(f"expected {expect.decision}, got {got} ({decision.reason})")
    if expect.view is not None and decision.view != expect.view:
        problems.append(f"expected view {expect.view}, got {decision.view}")
    if expect.rules is not None and set(expect.rules) != set(decision.rule_ids):
        problems.append(f"expected rules {sorted(expect.rules)}, got {sorted(decision.rule_ids)}")
    if expect.reason is not None and expect.reason not in decision.reason:
        problems.append(f"expected reason containing {expect.reason!r}, got {decision.reason!r}")
    if expect.agreement is not None and decision.agreement_id != expect.agreement:
        problems.append(f"expected agreement {expect.agreement}, got {decision.agreement_id}")
    return "; ".join(problems) or None
