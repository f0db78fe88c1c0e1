"""Networks: isolation, national agreements, network files, membership, reloads, side by side."""

import random
import shutil
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from policy_factories import (
    DEMO,
    EXAMPLES,
    IN_FORCE,
    POLICIES,
    agreement_from,
    caller,
    minimal_document,
    note,
    policy_set_of,
    referral,
    statistics,
)
from policy_reference import Outcome, reference_decide
from policy_strategies import ELSEWHERE, agreement_documents, random_requests

from app.policy import (
    Caller,
    Decision,
    PolicySet,
    PolicyStore,
    Record,
    check,
    decide,
    load_agreements,
    ropa,
    ropa_markdown,
    who_can,
)
from app.policy.build import NETWORK_CONDITION
from app.policy.policy_tests import run_policy_tests


def outcome(decision: Decision) -> Outcome:
    return Outcome(
        decision.permit, decision.view, decision.rule_ids, decision.agreement_id, decision.reason_code
    )


def decide_as_reference(
    policy_set: PolicySet, who: Caller, purpose: str, record: Record, view: str | None = None
) -> Decision:
    decision = decide(policy_set, who, purpose, record, view, now=IN_FORCE)
    expected = reference_decide(list(policy_set), who, purpose, record, view, IN_FORCE)
    assert outcome(decision) == expected, (who, purpose, record, view)
    return decision


def rule(rule_id: str, view: str, to: dict[str, Any], purposes: tuple[str, ...] = ("assessment",)) -> dict[str, Any]:
    return {
        "id": rule_id,
        "to": to,
        "view": view,
        "purposes": list(purposes),
        "legal_basis": "public_task",
        "retention": "P1Y",
    }


def of_network(agreement_id: str, network: str, **overrides: Any) -> dict[str, Any]:
    return minimal_document(agreement=agreement_id, network=network, **overrides)


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def network_file(network_id: str, coordinator: str, members: list[str] | None = None, **extra: Any) -> str:
    document = {"network": network_id, "name": network_id.title(), "coordinator": coordinator, **extra}
    if members is not None:
        document["members"] = members
    return dump(document)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "networks").mkdir()
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- isolation --------------------------------------------------------------------------------

POLICE_CASE = rule("case-to-police", "referral.case", {"sectors": ["police"]})
SUMMARY_TO_A = rule("summary-to-a", "referral.summary", {"agencies": ["agency-a"]})


class TestIsolation:
    def test_permits_never_grant_a_record_of_another_network(self) -> None:
        """One agency, a party in two networks, sees each network's record through its own agreement."""
        policy_set = policy_set_of(
            of_network("north-net", "north"),  # case-to-a: referral.case
            of_network("south-net", "south", rules=[SUMMARY_TO_A]),
        )
        who = caller("agency-a", "education")
        north = decide_as_reference(policy_set, who, "assessment", referral("north"))
        south = decide_as_reference(policy_set, who, "assessment", referral("south"))
        assert (north.agreement_id, north.view) == ("north-net", "referral.case")
        assert (south.agreement_id, south.view) == ("south-net", "referral.summary")
        for network in ("east", None):
            elsewhere = decide_as_reference(policy_set, who, "assessment", referral(network))
            assert not elsewhere.permit and elsewhere.reason_code == "no_rule"
        # Asking for the wider view of a south record: north-net's grant does not reach it.
        wider = decide_as_reference(policy_set, who, "assessment", referral("south"), "referral.case")
        assert not wider.permit

    def test_denies_never_touch_a_record_of_another_network(self) -> None:
        deny = {"id": "no-narrative-to-police", "to": {"sectors": ["police"]}, "view": ["narrative"]}
        policy_set = policy_set_of(
            of_network("north-net", "north", rules=[POLICE_CASE], deny=[deny]),
            of_network("south-net", "south", rules=[POLICE_CASE]),
        )
        police = caller("police-x", "police")
        north = decide_as_reference(policy_set, police, "assessment", referral("north"))
        south = decide_as_reference(policy_set, police, "assessment", referral("south"))
        assert (north.reason_code, north.rule_ids) == ("denied_by_rule", ("no-narrative-to-police",))
        assert south.permit and south.agreement_id == "south-net"
        # A record naming no network: every permit fails, the deny holds (fail closed).
        unnamed = decide_as_reference(policy_set, police, "assessment", referral(None))
        assert not unnamed.permit

    def test_a_note_deny_of_another_network_does_not_withhold_a_note(self) -> None:
        shared_notes = rule("shared-notes", "notes.shared", {"sectors": ["police"]})
        deny = {"id": "no-shared", "to": {"sectors": ["police"]}, "view": {"notes": {"classification": ["shared"]}}}
        policy_set = policy_set_of(
            of_network("north-net", "north", rules=[shared_notes], deny=[deny]),
            of_network("south-net", "south", rules=[shared_notes]),
        )
        police = caller("police-x", "police")
        assert decide_as_reference(policy_set, police, "assessment", note("shared", "north")).rule_ids == ("no-shared",)
        south = decide_as_reference(policy_set, police, "assessment", note("shared", "south"))
        assert south.permit and south.agreement_id == "south-net"

    def test_emergency_access_stays_in_its_network(self) -> None:
        document = of_network("north-net", "north", emergency={"roles": ["caseworker"], "view": "referral.case"})
        policy_set = policy_set_of(document)
        worker = caller("agency-b", "education", ("caseworker",), ("owner",))
        assert decide_as_reference(policy_set, worker, "emergency", referral("north")).permit
        assert not decide_as_reference(policy_set, worker, "emergency", referral("south")).permit
        assert not decide_as_reference(policy_set, worker, "emergency", referral(None)).permit

    def test_statistics_are_of_a_network_too(self) -> None:
        stats = rule("stats", "statistics", {"sectors": ["national_authority"]}, ("statistics",))
        policy_set = policy_set_of(of_network("north-net", "north", rules=[stats]))
        national = caller("agency-b", "national_authority")
        assert decide_as_reference(policy_set, national, "statistics", statistics("north")).permit
        assert not decide_as_reference(policy_set, national, "statistics", statistics("south")).permit


@settings(
    max_examples=60,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    documents=st.lists(st.sampled_from(["n1", "n2", "n3"]), min_size=1, max_size=3, unique=True).flatmap(
        lambda ids: st.tuples(*(agreement_documents(i) for i in ids))
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_generated_permits_move_with_their_record(documents: tuple[dict[str, Any], ...], seed: int) -> None:
    """Each permit, asked again for the same record of every other network, is not granted by that agreement."""
    agreements = [agreement_from(d) for d in documents]
    policy_set = PolicySet.of(agreements)
    networks = {n for a in agreements for n in a.networks}
    for who, purpose, record, view, now in random_requests(random.Random(seed), agreements, 100):  # noqa: S311
        decision = decide(policy_set, who, purpose, record, view, now=now)
        assert outcome(decision) == reference_decide(agreements, who, purpose, record, view, now)
        if not decision.permit:
            continue
        granting = policy_set.get(decision.agreement_id or "")
        assert granting is not None and record.attributes.get("network") in granting.networks
        for other in [*sorted(networks - granting.networks), ELSEWHERE, None]:
            moved = {k: v for k, v in record.attributes.items() if k != "network"}
            if other is not None:
                moved["network"] = other
            again = decide(policy_set, who, purpose, Record(record.kind, moved), view, now=now)
            expected = reference_decide(agreements, who, purpose, Record(record.kind, moved), view, now)
            assert outcome(again) == expected
            assert not (again.permit and again.agreement_id == granting.id)


# --- an agreement's networks ------------------------------------------------------------------


def plain_networks(document: dict[str, Any]) -> set[str]:
    """A plain reading of the file: `networks`, else `network`, else the agreement's own id."""
    return set(document.get("networks") or [document.get("network") or document["agreement"]])


class TestAgreementNetworks:
    def test_implicit_network_is_the_agreement_id(self) -> None:
        agreement = agreement_from(minimal_document(emergency={"roles": ["caseworker"], "view": "referral.case"}))
        assert agreement.networks == {"test-net"}
        rules = [*agreement.all_permits, *agreement.denies]
        assert rules and all((NETWORK_CONDITION, frozenset({"test-net"})) in r.when for r in rules)
        network = policy_set_of(minimal_document()).networks["test-net"]
        assert network.coordinator is None and network.agreements == ("test-net",)
        assert network.members == {"agency-a", "agency-b", "police-x", "ngo-y"}

    def test_every_rule_carries_the_named_network(self) -> None:
        deny = {"id": "no-narrative", "view": ["narrative"]}
        agreement = agreement_from(of_network("north-net", "north", deny=[deny]))
        assert agreement.networks == {"north"}
        assert all(dict(r.when)[NETWORK_CONDITION] == {"north"} for r in [*agreement.all_permits, *agreement.denies])

    @pytest.mark.parametrize("folder_", [POLICIES, EXAMPLES], ids=["policies", "examples"])
    def test_shipped_agreements_decide_the_networks_their_files_name(self, folder_: Path) -> None:
        """The reference takes an agreement's networks as built; this pins them to the file itself."""
        policy_set = load_agreements(folder_).policy_set
        for path in sorted(folder_.glob("*.yaml")):
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            agreement = policy_set.get(document["agreement"])
            assert agreement is not None and agreement.networks == plain_networks(document)

    def test_network_and_networks_together_are_refused(self, folder: Path) -> None:
        text = dump(national_document(network="north"))
        path = write(folder, "national.yaml", text)
        result = load_agreements(folder)
        assert [(e.file, e.line, e.reason) for e in result.errors] == [
            (str(path), line_of(text, "networks:"), "name either network or networks, not both")
        ]


# --- national agreements across networks ------------------------------------------------------

NATIONAL_STATS = rule("national-stats", "statistics", {"sectors": ["national_authority"]}, ("statistics",))


def national_document(**overrides: Any) -> dict[str, Any]:
    document = minimal_document(
        agreement="national",
        networks=["north", "south"],
        parties=["national-office"],
        purposes={"statistics": "Count across networks."},
        views={"statistics": {"aggregate": ["concerns", "district"]}},
        rules=[NATIONAL_STATS],
    )
    document.update(overrides)
    return document


@pytest.fixture
def national_folder(folder: Path) -> Path:
    write(folder, "networks/north.yaml", network_file("north", "north-hall", ["north-youth"]))
    write(folder, "networks/south.yaml", network_file("south", "south-hall"))
    write(folder, "north-net.yaml", dump(of_network("north-net", "north", parties=["north-hall", "north-school"])))
    write(folder, "south-net.yaml", dump(of_network("south-net", "south", parties=["south-hall", "north-school"])))
    write(folder, "national.yaml", dump(national_document()))
    return folder


class TestNational:
    def test_statistics_of_every_network_it_names(self, national_folder: Path) -> None:
        result = load_agreements(national_folder)
        assert result.errors == []
        policy_set = result.policy_set
        assert policy_set.get("national").networks == {"north", "south"}  # type: ignore[union-attr]
        office = caller("national-office", "national_authority", ("statistics_reader",))
        for network in ("north", "south"):
            decision = decide_as_reference(policy_set, office, "statistics", statistics(network))
            assert decision.permit and decision.agreement_id == "national"
        for network in ("east", None):
            assert not decide_as_reference(policy_set, office, "statistics", statistics(network)).permit
        assert not decide_as_reference(policy_set, office, "statistics", referral("north")).permit

    def test_it_confers_no_membership(self, national_folder: Path) -> None:
        policy_set = load_agreements(national_folder).policy_set
        assert policy_set.networks["north"].agreements == ("national", "north-net")
        assert "national-office" not in policy_set.networks["north"].members
        assert policy_set.networks_of("national-office") == ()

    def test_a_referral_view_is_refused_with_file_and_line(self, national_folder: Path) -> None:
        views = {"statistics": {"aggregate": ["concerns"]}, "referral.summary": ["id", "status"]}
        text = dump(national_document(views=views))
        path = write(national_folder, "national.yaml", text)
        result = load_agreements(national_folder)
        assert [(e.file, e.line, e.path, e.reason) for e in result.errors] == [
            (
                str(path),
                line_of(text, "referral.summary:"),
                "views.referral.summary",
                "an agreement across networks shares aggregates only: statistics views only",
            )
        ]
        assert result.policy_set.get("national") is None

    def test_an_emergency_section_is_refused(self, national_folder: Path) -> None:
        text = dump(national_document(emergency={"roles": ["caseworker"], "view": "statistics"}))
        write(national_folder, "national.yaml", text)
        reasons = {(e.line, e.reason) for e in load_agreements(national_folder).errors}
        assert (line_of(text, "emergency:"), "an agreement across networks has no emergency section") in reasons

    def test_tools_list_its_networks(self, national_folder: Path) -> None:
        policy_set = load_agreements(national_folder).policy_set
        national = {e["agreement"]: e for e in ropa(policy_set)["agreements"]}["national"]
        assert national["networks"] == ["north", "south"]
        assert "- Networks: north, south (across networks: aggregate statistics only)" in ropa_markdown(policy_set)
        for network in ("north", "south"):
            (recipient,) = who_can(policy_set, "statistics", "statistics", IN_FORCE, network)
            assert (recipient.agreement_id, recipient.networks) == ("national", ("north", "south"))
        assert who_can(policy_set, "statistics", "statistics", IN_FORCE, "east") == []

    def test_an_undeclared_network_is_refused_at_its_line(self, national_folder: Path) -> None:
        text = dump(national_document(networks=["north", "west"]))
        path = write(national_folder, "national.yaml", text)
        (error,) = load_agreements(national_folder).errors
        assert (error.file, error.line, error.path) == (str(path), line_of(text, "networks:"), "networks")
        assert error.reason.startswith("unknown network 'west': declared networks are north, south")


# --- network files ----------------------------------------------------------------------------


class TestNetworkFiles:
    def test_an_agreement_naming_an_undeclared_network_is_refused(self, folder: Path) -> None:
        write(folder, "networks/north.yaml", network_file("north", "north-hall"))
        text = dump(of_network("west-net", "west"))
        path = write(folder, "west-net.yaml", text)
        result = load_agreements(folder)
        assert [(e.file, e.line, e.path, e.agreement) for e in result.errors] == [
            (str(path), line_of(text, "network: west"), "network", "west-net")
        ]
        assert result.errors[0].reason == (
            "unknown network 'west': declared networks are north (a network is declared in networks/<id>.yaml)"
        )
        assert result.policy_set.get("west-net") is None

    def test_an_agreement_naming_its_own_id_needs_no_network_file(self, folder: Path) -> None:
        write(folder, "solo.yaml", dump(of_network("solo", "solo")))
        write(folder, "plain.yaml", dump(minimal_document(agreement="plain")))
        result = load_agreements(folder)
        assert result.errors == []
        assert {n.id: n.coordinator for n in result.policy_set.networks.values()} == {"plain": None, "solo": None}

    def test_a_declared_network(self, folder: Path) -> None:
        text = textwrap.dedent(
            """\
            network: north
            name: North Town Community Action Team
            description: Meets monthly.
            locales: [mk, sq-AL, en]
            coordinator: north-hall
            members: [north-youth]
            """
        )
        write(folder, "networks/north.yaml", text)
        result = load_agreements(folder)
        assert result.errors == []
        north = result.policy_set.network("north")
        assert north is not None and north.source == str(folder / "networks" / "north.yaml")
        assert (north.name, north.locales, north.coordinator) == (
            "North Town Community Action Team",
            ("mk", "sq-AL", "en"),
            "north-hall",
        )
        assert north.agreements == () and north.members == {"north-hall", "north-youth"}
        assert north.to_dict()["members"] == ["north-hall", "north-youth"]

    def test_duplicate_network_id(self, folder: Path) -> None:
        first = write(folder, "networks/north.yaml", network_file("north", "north-hall"))
        text = "# the same network again\n" + network_file("north", "other-hall")
        second = write(folder, "networks/north2.yaml", text)
        result = load_agreements(folder)
        assert [(e.file, e.line, e.reason) for e in result.errors] == [
            (str(second), line_of(text, "network: north"), f"duplicate network id 'north': already defined in {first}")
        ]
        assert result.policy_set.networks["north"].coordinator == "north-hall"

    @pytest.mark.parametrize(
        ("text", "needle", "path", "reason"),
        [
            (
                network_file("north", "north-hall") + "colour: red\n",
                "colour: red",
                "colour",
                "unknown field 'colour'",
            ),
            (
                network_file("north", "north-hall") + "locales:\n  - en\n  - EN_gb\n",
                "EN_gb",
                "locales[1]",
                "'EN_gb' is not valid here",
            ),
            ("network: north\nname: North\n", "network: north", "coordinator", "missing required field 'coordinator'"),
            (network_file("North Town", "north-hall"), "network:", "network", "'North Town' is not valid here"),
        ],
        ids=["unknown-key", "bad-locale", "no-coordinator", "bad-id"],
    )
    def test_a_broken_network_file_is_refused_with_file_and_line(
        self, folder: Path, text: str, needle: str, path: str, reason: str
    ) -> None:
        file = write(folder, "networks/north.yaml", text)
        result = load_agreements(folder)
        (error,) = result.errors
        assert (error.file, error.line, error.path) == (str(file), line_of(text, needle), path)
        assert error.reason.startswith(reason)
        assert result.policy_set.networks == {}

    def test_yaml_syntax_error_in_a_network_file(self, folder: Path) -> None:
        file = write(folder, "networks/north.yaml", "network: north\nname: [unclosed\ncoordinator: x\n")
        (error,) = load_agreements(folder).errors
        assert error.file == str(file) and error.line is not None and error.reason.startswith("YAML syntax error")

    def test_an_agreement_of_a_refused_network_is_refused_too(self, folder: Path) -> None:
        write(folder, "networks/north.yaml", network_file("north", "north-hall") + "colour: red\n")
        write(folder, "north-net.yaml", dump(of_network("north-net", "north")))
        result = load_agreements(folder)
        assert {Path(e.file).name for e in result.errors} == {"north.yaml", "north-net.yaml"}
        assert len(result.policy_set) == 0


# --- lint --------------------------------------------------------------------------------------


class TestLint:
    def test_the_implicit_condition_raises_no_warning(self) -> None:
        stats = rule("stats", "statistics", {"sectors": ["national_authority"]}, ("statistics",))
        document = minimal_document(rules=[stats, rule("case-to-a", "referral.case", {"agencies": ["agency-a"]})])
        findings = check(policy_set_of(document), IN_FORCE)
        assert not [f for f in findings if "network" in f.message]
        assert [f for f in findings if f.level != "info"] == []

    def test_a_coordinator_party_to_none_of_its_networks_agreements(self, folder: Path) -> None:
        write(folder, "networks/north.yaml", network_file("north", "north-hall"))
        write(folder, "north-net.yaml", dump(of_network("north-net", "north")))
        findings = check(load_agreements(folder), IN_FORCE)
        assert [(f.level, f.agreement, f.message) for f in findings if "coordinator" in f.message] == [
            (
                "warning",
                "north-net",
                "network north: coordinator north-hall is a party to none of its agreements in force"
                " (north-net): it can triage nothing",
            )
        ]


# --- members ----------------------------------------------------------------------------------


class TestMembers:
    def test_members_are_declared_coordinator_and_parties(self, national_folder: Path) -> None:
        policy_set = load_agreements(national_folder).policy_set
        north = policy_set.network("north")
        assert north is not None
        # Declared members, the coordinator, and the parties of north's own agreements.
        assert north.members == {"north-youth", "north-hall", "north-school"}
        south = policy_set.network("south")
        assert south is not None and south.members == {"south-hall", "north-school"}
        assert policy_set.network("east") is None

    def test_networks_of_an_agency(self, national_folder: Path) -> None:
        policy_set = load_agreements(national_folder).policy_set
        assert policy_set.networks_of("north-school") == ("north", "south")
        assert policy_set.networks_of("north-youth") == ("north",)  # declared, party to nothing
        assert policy_set.networks_of("south-hall") == ("south",)
        assert policy_set.networks_of("stranger") == ()


# --- reloads ----------------------------------------------------------------------------------


class TestStore:
    def test_reload_keeps_the_networks(self, national_folder: Path) -> None:
        store = PolicyStore()
        assert store.reload(national_folder).ok
        assert set(store.current.networks) == {"north", "south"}
        assert store.current.networks["north"].coordinator == "north-hall"
        # A broken agreement file keeps its previous version, and the networks stay declared.
        write(national_folder, "north-net.yaml", "agreement: [oops")
        assert not store.reload(national_folder).ok
        assert store.current.get("north-net") is not None
        assert store.current.networks["north"].coordinator == "north-hall"
        assert store.current.networks_of("north-school") == ("north", "south")

    def test_reload_picks_up_a_changed_network(self, national_folder: Path) -> None:
        store = PolicyStore()
        store.reload(national_folder)
        write(national_folder, "networks/north.yaml", network_file("north", "north-council", ["north-club"]))
        assert store.reload(national_folder).ok
        north = store.current.networks["north"]
        assert north.coordinator == "north-council" and "north-club" in north.members
        assert "north-youth" not in north.members

    def test_a_broken_network_file_keeps_the_previous_network(self, national_folder: Path) -> None:
        store = PolicyStore()
        store.reload(national_folder)
        before = store.current
        write(national_folder, "networks/north.yaml", network_file("north", "north-hall") + "colour: red\n")
        result = store.reload(national_folder)
        assert not result.ok
        # The agreements of north stay in force, and so does north with its coordinator.
        assert store.current.get("north-net") is before.get("north-net")
        assert store.current.networks["north"] == before.networks["north"]
        assert any("kept network north" in w for w in result.warnings)


# --- the shipped agreements and every example, side by side -----------------------------------


def side_by_side(target: Path) -> Path:
    """policies/ and every example in one folder, each with its network and policy tests."""
    for source in (POLICIES, EXAMPLES):
        for sub in ("", "networks", "tests"):
            (target / sub).mkdir(exist_ok=True)
            for path in sorted((source / sub).glob("*.yaml")):
                shutil.copy(path, target / sub / path.name)
        # The networks' codes of conduct, which their files name.
        shutil.copytree(source / "networks" / "conduct", target / "networks" / "conduct", dirs_exist_ok=True)
    return target


def example_networks() -> list[str]:
    return sorted(path.stem for path in (EXAMPLES / "networks").glob("*.yaml"))


@pytest.fixture(scope="module")
def together(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, PolicySet]]:
    target = side_by_side(tmp_path_factory.mktemp("together"))
    result = load_agreements(target)
    assert result.errors == [] and result.warnings == []
    yield target, result.policy_set


_ROLES = [(), ("coordinator",), ("caseworker",), ("partner_reader",), ("statistics_reader",)]
_RELATIONS = [(), ("assigned",), ("owner", "referrer")]
_SECTORS = ["local_government", "social_services", "education", "police", "civil_society", "national_authority"]


class TestSideBySide:
    def test_every_example_is_a_network(self, together: tuple[Path, PolicySet]) -> None:
        _, policy_set = together
        assert example_networks() == ["kenya-county-forum", "kumanovo-cat", "nyc-interagency", "tripoli-lpn"]
        assert set(policy_set.networks) == {DEMO, "demo-town", "training-demo", *example_networks()}
        for network_id in example_networks():
            network = policy_set.networks[network_id]
            agreement = policy_set.get(network_id)
            assert agreement is not None and network.agreements == (network_id,)
            assert network.coordinator in agreement.party_set
            assert network.members == agreement.party_set  # the files list exactly the parties
            assert policy_set.networks_of(network.coordinator or "") == (network_id,)
        assert policy_set.networks_of("city-municipality") == (DEMO,)

    def test_no_warnings_and_policy_tests_still_pass(self, together: tuple[Path, PolicySet]) -> None:
        target, policy_set = together
        assert [f for f in check(load_agreements(target), IN_FORCE) if f.level != "info"] == []
        report = run_policy_tests(policy_set, target / "tests")
        assert report.failed == [] and report.uncovered == {}

    @pytest.mark.parametrize("network_id", example_networks())
    def test_each_example_is_isolated_from_demo_city(self, together: tuple[Path, PolicySet], network_id: str) -> None:
        _, policy_set = together
        example = policy_set.get(network_id)
        city = policy_set.get(DEMO)
        assert example is not None and city is not None
        own_permits = 0
        asked = 0
        for parties, purposes, home, away in (
            (example.parties, example.purposes, network_id, DEMO),
            (city.parties, city.purposes, DEMO, network_id),
        ):
            for agency in parties:
                for sector, roles, relations in zip(_SECTORS * 3, _ROLES * 3, _RELATIONS * 5, strict=False):
                    who = caller(agency, sector, roles, relations)
                    for purpose in [*purposes, "emergency"]:
                        for make in (referral, lambda n: note("shared", n), statistics):
                            base = {"consent": "given", "status": "assigned"}
                            record = make(home)
                            record = Record(record.kind, {**base, **record.attributes})
                            own_permits += decide_as_reference(policy_set, who, purpose, record).permit
                            foreign = Record(record.kind, {**record.attributes, "network": away})
                            decision = decide_as_reference(policy_set, who, purpose, foreign)
                            assert not decision.permit, (who, purpose, foreign)
                            asked += 1
        assert own_permits > 10 and asked > 300

    def test_a_coordinator_of_an_example_sees_nothing_of_demo_city(self, together: tuple[Path, PolicySet]) -> None:
        """Finding 1 of issue 11, at the policy layer: kumanovo's focal point and demo-city's records."""
        _, policy_set = together
        focal = caller("kumanovo-municipality", "local_government", ("coordinator", "caseworker"), ("assigned",))
        own = referral("kumanovo-cat", consent="given", status="assigned")
        city = referral(DEMO, consent="given", status="assigned")
        assert decide_as_reference(policy_set, focal, "safeguarding_assessment", own).view == "referral.full"
        for purpose in ("safeguarding_assessment", "intervention_planning", "emergency", "statistics"):
            assert not decide_as_reference(policy_set, focal, purpose, city).permit
            assert not decide_as_reference(policy_set, focal, purpose, city, "referral.summary").permit


# --- a network's protocol ---------------------------------------------------------------------


class TestProtocol:
    def test_a_declared_protocol_with_defaults_where_it_is_silent(self, folder: Path) -> None:
        text = network_file("north", "north-hall") + textwrap.dedent(
            """\
            members: [north-youth, north-police]
            protocol:
              meetings: {cadence: P2W, chair: north-youth}
              deadlines:
                triage: {immediate: PT12H, routine: P1M}
              reviews_after_closure: [P3M, P1Y]
              repeat_referral_window: P18M
              action_statuses: [open, done, cancelled, referred-on]
              reassessment_by: [coordinator, assigned]
            """
        )
        write(folder, "networks/north.yaml", text)
        result = load_agreements(folder)
        assert result.errors == []
        north = result.policy_set.networks["north"]
        protocol = north.to_dict()["protocol"]
        assert protocol == {
            "meetings": {"cadence": "P2W", "chair": "north-youth"},
            "deadlines": {
                # an urgency the file leaves out keeps its default deadline
                "triage": {"immediate": "PT12H", "urgent": "P2D", "priority": "P5D", "routine": "P1M"},
                "assign": {"immediate": "P2D", "urgent": "P5D", "priority": "P10D", "routine": "P30D"},
            },
            "reviews_after_closure": ["P3M", "P1Y"],
            "repeat_referral_window": "P18M",
            "action_statuses": ["open", "done", "cancelled", "referred-on"],
            "reassessment_by": ["coordinator", "assigned"],
        }
        immediate = north.protocol.triage_deadline("immediate")
        assert immediate is not None
        start = datetime(2026, 3, 1, 9, tzinfo=UTC)
        assert immediate.add_to(start) == start + timedelta(hours=12)
        assert north.protocol.assign_deadline("no-such-urgency") is None

    def test_no_protocol_is_the_default_one_chaired_by_the_coordinator(self, folder: Path) -> None:
        write(folder, "networks/north.yaml", network_file("north", "north-hall"))
        write(folder, "solo.yaml", dump(of_network("solo", "solo")))
        networks = load_agreements(folder).policy_set.networks
        assert networks["north"].chair == "north-hall"
        assert networks["north"].to_dict()["protocol"]["meetings"] == {"cadence": "P1M", "chair": "north-hall"}
        assert networks["solo"].chair is None  # an implicit network has no coordinator to chair
        assert networks["solo"].protocol == networks["north"].protocol

    @pytest.mark.parametrize(
        ("protocol", "needle", "path", "reason"),
        [
            ("  deadlines:\n    triage: {soon: P1D}\n", "soon", "protocol.deadlines.triage.soon",
             "unknown urgency 'soon': the urgencies are routine, priority, urgent, immediate"),
            ("  deadlines:\n    assign: {urgent: P0D}\n", "P0D", "protocol.deadlines.assign.urgent",
             "bad duration 'P0D': must be longer than zero"),
            ("  meetings: {cadence: monthly}\n", "monthly", "protocol.meetings.cadence", "bad duration"),
            ("  meetings: {chair: outsider}\n", "outsider", "protocol.meetings.chair",
             "the chair 'outsider' is not a member of the network (members: north-hall)"),
            ("  action_statuses: [open, cancelled]\n", "action_statuses", "protocol.action_statuses",
             "action statuses must include open, done (missing: done)"),
            ("  action_statuses: [open, done, overdue]\n", "action_statuses", "protocol.action_statuses",
             "'overdue' is not a status"),
            ("  reassessment_by: [police]\n", "police", "protocol.reassessment_by[0]",
             "Input should be 'owner', 'referrer', 'assigned' or 'coordinator'"),
            ("  reviews_after_closure: [P6M, soon]\n", "soon", "protocol.reviews_after_closure[1]",
             "bad duration"),
            ("  meeting_day: tuesday\n", "meeting_day", "protocol.meeting_day", "unknown field 'meeting_day'"),
        ],
        ids=["unknown-urgency", "zero-deadline", "bad-cadence", "chair-not-member", "no-done", "overdue-status",
             "unknown-party", "bad-review", "unknown-key"],
    )
    def test_a_broken_protocol_is_refused_with_file_and_line(
        self, folder: Path, protocol: str, needle: str, path: str, reason: str
    ) -> None:
        text = network_file("north", "north-hall") + "protocol:\n" + protocol
        file = write(folder, "networks/north.yaml", text)
        result = load_agreements(folder)
        (error,) = result.errors
        assert (error.file, error.line, error.path) == (str(file), line_of(text, needle), path)
        assert error.reason.startswith(reason), error.reason
        assert result.policy_set.networks == {}

    def test_the_shipped_networks_declare_their_protocols(self) -> None:
        for folder in (POLICIES, EXAMPLES):
            result = load_agreements(folder)
            assert result.errors == []
            declared = [n for n in result.policy_set.networks.values() if n.source is not None]
            assert declared
            for network in declared:
                assert "protocol:" in Path(network.source or "").read_text("utf-8"), network.id
        kenya = load_agreements(EXAMPLES).policy_set.networks["kenya-county-forum"]
        assert (kenya.chair, kenya.protocol.cadence.iso()) == ("mombasa-county-commissioner", "P3M")
