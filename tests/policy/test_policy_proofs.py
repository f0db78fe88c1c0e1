"""Exact analysis of agreements: the space of classes, proofs, diffs, who-can and lint, against brute force."""

import json
import shutil
from collections.abc import Iterator
from datetime import date
from itertools import chain, combinations, product
from pathlib import Path

import pytest
from policy_factories import EXAMPLES, POLICIES, minimal_document, policy_set_of
from typer.testing import CliRunner

from app.cli import cli as app_cli
from app.cli_common import ExitCode
from app.policy.decision import AttributeValue, Caller, Record
from app.policy.diff import diff_agreements
from app.policy.engine import decide
from app.policy.lint import check
from app.policy.loader import load_agreements, parse_agreement
from app.policy.model import Agreement
from app.policy.policy_set import PolicySet
from app.policy.space import KINDS, OTHER_AGENCY, OTHER_NETWORK, Space, outcome
from app.policy.vocabulary import RECORD_VALUES, RELATIONS, ROLES, SECTORS, RecordKind
from app.referrals.schemas import referral_field_paths

runner = CliRunner()
PROOF_DAY = date(2026, 6, 1)


def loaded(folder: Path) -> PolicySet:
    result = load_agreements(folder, referral_field_paths())
    assert result.ok, result.errors
    return result.policy_set


def subsets(values: tuple[str, ...], up_to: int) -> Iterator[frozenset[str]]:
    return (frozenset(c) for c in chain.from_iterable(combinations(values, n) for n in range(up_to + 1)))


def network_sets() -> Iterator[tuple[str, PolicySet, date]]:
    """Each shipped network with the agreements deciding its records, on a day they are all in force."""
    for folder in (POLICIES, EXAMPLES):
        everything = loaded(folder)
        for network in sorted(everything.networks):
            deciding = [a for a in everything if network in a.networks]
            if not deciding:
                continue  # a declared network no agreement decides yet: nothing to analyse
            day = max([PROOF_DAY, *(a.effective_from for a in deciding)])
            yield network, PolicySet.of(deciding, everything.declared.values()), day


NETWORKS = list(network_sets())


def default_fields(policy_set: PolicySet, caller: Caller, purpose: str, record: Record, day: date) -> frozenset[str]:
    decision = decide(policy_set, caller, purpose, record, None, now=day)
    return decision.fields if decision.permit else frozenset()


class TestExactness:
    """The classes are exact: every concrete point gets its class's answer from the engine.

    The full product of every dimension has 10^8-10^11 points per network (`Dimensions.points`
    counts even the reduced one), too many for a test.  So two products are enumerated in full,
    each against the other side's classes: a rule matches when the caller meets its audience and
    the record its conditions, so between them they cover every way a point can differ from its
    class's representative.

    - callers: every party agency and an outsider × every sector × no role, each single role and
      every role (of all seven) × every set of relations (of all four, `coordinator` included) ×
      every set of the required courses and an unlisted one; against every record class, on the
      smallest network (about 30 s; each of the others takes minutes);
    - records: every value of every attribute a rule names, one no rule names and missing,
      `concerns` as the empty set, every singleton and every pair (not all 2^13 subsets), every
      network and an unknown one, every note classification; against every caller class, on
      the shipped networks but nyc-interagency and kumanovo-cat, whose concerns and
      intervention-type conditions multiply it to minutes (they passed when run once by hand).

    Callers are asked for the default view; records for the default and every named view.
    """

    @pytest.mark.parametrize("network", ["kenya-county-forum"])
    def test_every_caller_gets_its_class_answer(self, network: str) -> None:
        _, policy_set, day = next(n for n in NETWORKS if n[0] == network)
        space = Space.of([(policy_set, day)])
        signatures = space.signatures[0]
        parties = sorted({p for a in policy_set for p in a.party_set}) + [OTHER_AGENCY]
        courses = (*space.dimensions.courses, "unlisted-course")
        roles = [*subsets(tuple(sorted(ROLES)), 1), ROLES]
        relations = list(subsets(tuple(sorted(RELATIONS | {"coordinator"})), 4))
        places = {(a, s): signatures.where(a, s) for a, s in product(parties, sorted(SECTORS))}
        checked = 0
        for purpose, kind in product(space.dimensions.purposes, KINDS):
            callers, records = space.groups(purpose, kind)
            by_key = {key[0]: shape for shape, key, _ in callers}
            serving, blocking = signatures.serving.get((purpose, kind), 0), signatures.blocking(purpose, kind)
            expected = {
                (key[0], record): default_fields(policy_set, shape.caller(), purpose, record.record(), day)
                for shape, key, _ in callers for record, _, _, _ in records
            }
            for (agency, sector), (parties_in, place_permits, place_denies) in places.items():
                for role_set, relation_set, trained in product(roles, relations, subsets(courses, len(courses))):
                    permits, denies = signatures.who(role_set, relation_set, trained)
                    key = (parties_in, place_permits & permits & serving, place_denies & denies & blocking)
                    assert key in by_key
                    concrete = Caller("brute", agency, sector, role_set, relation_set, trained)
                    for record, _, _, _ in records:
                        got = default_fields(policy_set, concrete, purpose, record.record(), day)
                        assert got == expected[(key, record)], (concrete, purpose, record)
                        checked += 1
        assert checked > 100_000

    @pytest.mark.parametrize("network", ["demo-city", "demo-town", "kenya-county-forum", "tripoli-lpn"])
    def test_every_record_gets_its_class_answer(self, network: str) -> None:
        _, policy_set, day = next(n for n in NETWORKS if n[0] == network)
        space = Space.of([(policy_set, day)])
        cells = {(c.caller, c.purpose, c.record): c.outcome.fields for c in space.cells()}
        networks = [*sorted(policy_set.networks), OTHER_NETWORK]
        checked = 0
        for kind in KINDS:
            named = dict(space.dimensions.record_values[kind])
            for purpose in space.dimensions.purposes:
                callers, records = space.groups(purpose, kind)
                classes = {(key, network_of, met): shape for shape, key, network_of, met in records}
                for attributes in concrete_records(kind, named, networks):
                    record = Record(kind, attributes)
                    key = record_key(space, purpose, kind, attributes)
                    representative = classes[key]
                    for caller, _, _ in callers:
                        got = outcome(policy_set, caller.caller(), purpose, record, day).fields
                        predicted = cells.get((caller, purpose, representative), frozenset())
                        assert got == predicted, (caller, purpose, record)
                        checked += 1
        assert checked > 1_000


def concrete_records(
    kind: RecordKind, named: dict[str, tuple[AttributeValue | None, ...]], networks: list[str]
) -> Iterator[dict[str, AttributeValue]]:
    """Every record over the full vocabularies of the attributes the rules name (concerns up to pairs)."""
    columns: list[tuple[str, list[AttributeValue | None]]] = []
    for key in named:
        if key == "network":
            columns.append((key, list(networks)))
        elif key == "concerns":
            columns.append((key, [None, *(frozenset(s) for s in subsets(tuple(sorted(RECORD_VALUES[key])), 2) if s)]))
        elif key in ("invited", "classification"):
            columns.append((key, [*sorted(RECORD_VALUES[key])]))
        else:
            columns.append((key, [None, *sorted(RECORD_VALUES[key])]))
    for values in product(*(v for _, v in columns)):
        yield {k: v for (k, _), v in zip(columns, values, strict=True) if v is not None}


RecordKey = tuple[tuple[tuple[AttributeValue | None, int, int], ...], AttributeValue | None, int]


def record_key(space: Space, purpose: str, kind: RecordKind, attributes: dict[str, AttributeValue]) -> RecordKey:
    """The class the analysis puts a concrete record in, for one purpose and kind."""
    signatures = space.signatures[0]
    holding, denying = (1 << len(signatures.permits)) - 1, (1 << len(signatures.denies)) - 1
    for key in space.dimensions.record_values[kind]:
        permits, denies = signatures.masks(kind, key[0], attributes.get(key[0]))
        holding, denying = holding & permits, denying & denies
    serving, blocking = signatures.serving.get((purpose, kind), 0), signatures.blocking(purpose, kind)
    given = attributes.get("classification") if kind == "note" else None
    named_networks = dict(space.dimensions.record_values[kind]).get("network", ())
    network = attributes.get("network")
    if not named_networks:
        network = None  # no rule of this kind names a network: the class does not depend on it
    elif network not in named_networks:
        network = OTHER_NETWORK
    return (((given, holding & serving, denying & blocking),), network, 0)


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app_cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def policies_copy(tmp_path: Path, assertions: str) -> Path:
    """The shipped agreements with one policy-test file carrying `assertions`."""
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder, ignore=shutil.ignore_patterns("examples"))
    for old in (folder / "tests").iterdir():
        old.unlink()
    (folder / "tests" / "demo-city.yaml").write_text(
        "agreement: demo-city\nnow: 2026-06-01\ncases:\n"
        "  - name: the coordinator triages\n"
        "    caller: {agency: city-municipality, sector: local_government, roles: [coordinator]}\n"
        "    purpose: safeguarding_assessment\n"
        "    expect: {decision: permit}\n"
        f"assertions:\n{assertions}"
    )
    return folder


class TestProve:
    @pytest.mark.parametrize("folder", [POLICIES, EXAMPLES], ids=["policies", "examples"])
    def test_every_shipped_network_keeps_its_assertions(self, folder: Path) -> None:
        code, out, _ = cli("policy", "prove", str(folder), "--json")
        assert code == ExitCode.OK, out
        report = json.loads(out)
        assert report["ok"] and report["problems"] == []
        proved = {(r["agreement"], r["kind"]) for r in report["results"]}
        for agreement in loaded(folder):
            assert {(agreement.id, "never"), (agreement.id, "only")} <= proved

    def test_a_failing_assertion_prints_a_counterexample_and_exits_1(self, tmp_path: Path) -> None:
        folder = policies_copy(tmp_path, "  - never: {to: {sectors: [police]}, fields: [narrative]}\n")
        code, out, _ = cli("policy", "prove", str(folder))
        assert code == ExitCode.ERROR
        assert "FAILS demo-city: never narrative" in out and "counterexample:" in out
        code, out, _ = cli("policy", "prove", str(folder), "--json")
        (result,) = json.loads(out)["results"]
        example = result["counterexample"]
        assert example["caller"]["sector"] == "police" and "narrative" in example["fields"]
        assert example["rule_ids"] and example["record"]["kind"] == "referral"
        # The engine agrees with the counterexample.
        caller = Caller("x", example["caller"]["agency"], "police", frozenset(example["caller"]["roles"]),
                        frozenset(example["caller"]["relations"]), frozenset(example["caller"]["trained"]))
        attributes = {k: v for k, v in example["record"].items() if k != "kind"}
        decision = decide(loaded(folder), caller, example["purpose"], Record("referral", attributes), None,
                          now=PROOF_DAY)
        assert decision.permit and "narrative" in decision.fields

    def test_only_and_always(self, tmp_path: Path) -> None:
        folder = policies_copy(tmp_path, (
            "  - name: contact details only to assigned caseworkers and owners\n"
            "    only:\n"
            "      fields: [subject.phone]\n"
            "      to: {relations: [assigned, owner]}\n"
            "      unless: [{agencies: [city-municipality]}]\n"
            "  - name: the coordinator always sees ethnicity when triaging\n"
            "    always:\n"
            "      to: {agencies: [city-municipality], sectors: [local_government], roles: [coordinator]}\n"
            "      fields: [subject.ethnicity]\n"
            "      purposes: [safeguarding_assessment]\n"
            "  - name: assigned police always get the narrative\n"
            "    always:\n"
            "      to: {sectors: [police], relations: [assigned]}\n"
            "      fields: [narrative]\n"
            "      purposes: [intervention_planning]\n"
            "      when: {consent: [given], status: [assigned]}\n"
        ))
        code, out, _ = cli("policy", "prove", str(folder), "--json")
        assert code == ExitCode.ERROR
        results = {r["assertion"]: r for r in json.loads(out)["results"]}
        only = results["contact details only to assigned caseworkers and owners"]["counterexample"]
        assert only is not None and only["caller"]["agency"] == "city-municipality"  # excluded by `unless`
        assert results["the coordinator always sees ethnicity when triaging"]["ok"]
        police = results["assigned police always get the narrative"]["counterexample"]
        assert police["fields"] == ["narrative"] and police["caller"]["sector"] == "police"

    def test_unknown_field_or_malformed_assertion_is_reported(self, tmp_path: Path) -> None:
        folder = policies_copy(tmp_path, "  - never: {fields: [subject.shoe_size]}\n")
        code, out, _ = cli("policy", "prove", str(folder))
        assert code == ExitCode.ERROR and "unknown field 'subject.shoe_size'" in out
        folder = policies_copy(tmp_path / "b", "  - never: {fields: [narrative]}\n    only: {fields: [narrative]}\n")
        code, out, _ = cli("policy", "prove", str(folder))
        assert code == ExitCode.ERROR and "exactly one of never, only, always" in out
        # `policy test` accepts the assertions key and still runs the cases.
        folder = policies_copy(tmp_path / "c", "  - never: {fields: [narrative]}\n")
        code, out, _ = cli("policy", "test", "--dir", str(folder))
        assert code == ExitCode.OK, out


class TestDiff:
    def changed(self, tmp_path: Path, old: str, new: str) -> Path:
        path = tmp_path / "new.yaml"
        path.write_text((POLICIES / "demo-city.yaml").read_text().replace(old, new))
        return path

    def test_a_widened_view_is_newly_granted_to_exactly_its_audience(self, tmp_path: Path) -> None:
        new = self.changed(tmp_path, "referral.summary: [id, subject.age_band,",
                           "referral.summary: [id, subject.given_name, subject.age_band,")
        code, out, _ = cli("policy", "diff", str(POLICIES / "demo-city.yaml"), str(new), "--json")
        assert code == ExitCode.OK
        found = json.loads(out)
        assert found["changed"] and found["old"] == "demo-city@v3"
        (group,) = found["groups"]
        assert group["newly_granted"] == ["subject.given_name"] and group["newly_withheld"] == []
        rules = {r for c in group["classes"] for r in c["new_rules"]}
        assert {"partner-summary", "assigned-partner-summary", "conference-partner"} <= rules
        # Every class the diff names gets the field from the engine now, and did not before.
        old_set, new_set = PolicySet.of([load_file(POLICIES / "demo-city.yaml")]), PolicySet.of([load_file(new)])
        for change in group["classes"]:
            c = change["caller"]
            caller = Caller("x", c["agency"], c["sector"], frozenset(c["roles"]), frozenset(c["relations"]),
                            frozenset(c["trained"]))
            attributes = {k: v for k, v in change["record"].items() if k != "kind"}
            record = Record("referral", attributes)
            assert "subject.given_name" in outcome(new_set, caller, change["purpose"], record, PROOF_DAY).fields
            assert "subject.given_name" not in outcome(old_set, caller, change["purpose"], record, PROOF_DAY).fields

    def test_a_narrowed_condition_is_newly_withheld(self, tmp_path: Path) -> None:
        new = self.changed(tmp_path, "when: {consent: [given], status: [accepted, assigned, in_intervention]}",
                           "when: {consent: [given], status: [assigned, in_intervention]}")
        found = diff_agreements(load_file(POLICIES / "demo-city.yaml"), load_file(new))
        assert found.changed and all(not g.granted for g in found.groups)
        assert {c.record.to_dict().get("status") for g in found.groups for c in g.classes} == {"accepted"}
        assert "newly withheld" in found.to_markdown()

    def test_no_change_exits_0_and_says_so(self) -> None:
        code, out, _ = cli("policy", "diff", str(POLICIES / "demo-city.yaml"), str(POLICIES / "demo-city.yaml"))
        assert code == ExitCode.OK and "No change in what leaves" in out

    def test_an_unreadable_file_is_an_error(self, tmp_path: Path) -> None:
        code, _, err = cli("policy", "diff", str(tmp_path / "missing.yaml"), str(POLICIES / "demo-city.yaml"))
        assert code == ExitCode.ERROR and "missing.yaml" in err
        broken = tmp_path / "broken.yaml"
        broken.write_text("agreement: x\n")
        code, _, err = cli("policy", "diff", str(broken), str(POLICIES / "demo-city.yaml"))
        assert code == ExitCode.ERROR and "error:" in err


class TestWhoCan:
    def test_a_field_reaches_everyone_whose_view_includes_it(self) -> None:
        code, out, _ = cli("policy", "who-can", "--field", "subject.ethnicity", "--on", "2026-06-01", "--json")
        assert code == ExitCode.OK
        found = json.loads(out)
        rules = {r for row in found for r in row["rules"]}
        assert {"coordinator-full", "owner-full"} <= rules
        assert all(row["views"] == ["referral.full"] for row in found if row["caller"]["agency"] != "town-council")
        assert not any(row["caller"]["sector"] == "police" and not {"owner"} & set(row["caller"]["relations"])
                       and row["caller"]["agency"] not in ("city-municipality", "town-council") for row in found)

    def test_a_view_exactly(self) -> None:
        code, out, _ = cli("policy", "who-can", "--view", "referral.recipients", "--exact", "--on", "2026-06-01",
                           "--json")
        assert code == ExitCode.OK
        assert {r for row in json.loads(out) for r in row["rules"]} >= {"auditor-subject-access"}

    @pytest.mark.parametrize("args", [["--view", "referral.nope", "--purpose", "service_provision"],
                                      ["--view", "referral.nope", "--exact"], ["--field", "subject.shoe_size"],
                                      ["--purpose", "service_provision"]])
    def test_an_unknown_view_or_field_is_a_usage_error(self, args: list[str]) -> None:
        code, out, err = cli("policy", "who-can", *args, "--on", "2026-06-01")
        assert code == ExitCode.USAGE and out == ""
        assert "unknown" in err or "exactly one of" in err


def load_file(path: Path) -> Agreement:
    parsed = parse_agreement(path.read_bytes(), str(path))
    assert parsed.agreement is not None, parsed.errors
    return parsed.agreement


class TestExactLint:
    def findings(self, **overrides: object) -> list[tuple[str, str | None, str]]:
        policy_set = policy_set_of(minimal_document(**overrides))
        return [(f.level, f.rule, f.message) for f in check(policy_set, PROOF_DAY)]

    def test_a_permit_another_covers_everywhere_is_subsumed(self) -> None:
        rules = [
            {"id": "case", "to": {"sectors": ["education"]}, "view": "referral.case", "purposes": ["assessment"],
             "legal_basis": "public_task", "retention": "P1Y"},
            {"id": "summary", "to": {"sectors": ["education"], "roles": ["caseworker"]}, "view": "referral.summary",
             "purposes": ["assessment"], "when": {"consent": ["given"]}, "legal_basis": "public_task",
             "retention": "P1Y"},
        ]
        found = self.findings(rules=rules)
        assert ("warning", "summary", "subsumed by case: it grants nothing case does not") in found
        assert not [f for f in found if f[1] == "case" and f[0] != "info"]

    def test_a_deny_on_a_narrower_view_keeps_the_smaller_permit(self) -> None:
        rules = [
            {"id": "case", "to": {"sectors": ["education"]}, "view": "referral.case", "purposes": ["assessment"],
             "legal_basis": "public_task", "retention": "P1Y"},
            {"id": "summary", "to": {"sectors": ["education"]}, "view": "referral.summary",
             "purposes": ["assessment"], "legal_basis": "public_task", "retention": "P1Y"},
        ]
        deny = [{"id": "no-narrative", "to": {"roles": ["caseworker"]}, "view": ["narrative"]}]
        found = self.findings(rules=rules, deny=deny)
        assert not any("subsumed" in message for _, _, message in found)

    def test_idle_and_unreachable_denies(self) -> None:
        deny = [
            {"id": "no-health-to-police", "to": {"sectors": ["police"]},
             "view": {"notes": {"classification": ["health"]}}},
            {"id": "stranger", "to": {"agencies": ["not-a-party"]}, "view": ["narrative"]},
        ]
        found = self.findings(deny=deny)
        assert ("info", "no-health-to-police",
                "denies nothing: no permit it could cancel matches where it does (a guard for future rules?)") in found
        assert ("warning", "stranger", "unreachable: no caller, purpose and record it matches") in found

    def test_shipped_agreements_raise_no_exact_warnings(self) -> None:
        for folder in (POLICIES, EXAMPLES):
            findings = check(load_agreements(folder, referral_field_paths()), PROOF_DAY)
            assert [f for f in findings if f.level == "warning"] == []
