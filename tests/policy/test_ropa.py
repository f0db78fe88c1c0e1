"""The record of processing is complete (GDPR Art. 30(1) (a)-(g)) for every shipped network, in JSON and Markdown."""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from policy_factories import EXAMPLES, POLICIES
from typer.testing import CliRunner

from app.cli import cli
from app.config import load_settings
from app.policy.loader import load_agreements, load_networks
from app.policy.ropa import ART30_ITEMS, ropa, ropa_markdown

runner = CliRunner()
FOLDERS = [POLICIES, EXAMPLES]
# A training network's people and cases are synthetic: its record is marked, not held to the checklist.
SHIPPED = [(folder, n.id) for folder in FOLDERS for n in load_networks(folder / "networks")[0].values()
           if not n.training]
TRAINING = [(folder, n.id) for folder in FOLDERS for n in load_networks(folder / "networks")[0].values() if n.training]
HEADINGS = {
    "a": "### (a) Controller, joint controllers, representative, data-protection officer",
    "b": "### (b) Purposes",
    "c": "### (c) Categories of personal data",
    "d": "### (d) Categories of recipients",
    "e": "### (e) Transfers to third countries or international organisations",
    "f": "### (f) Time limits for erasure",
    "g": "### (g) Technical and organisational security measures (Art. 32(1))",
}


def _cli_json(folder: Path, *extra: str) -> dict[str, Any]:
    result = runner.invoke(cli, ["policy", "ropa", "--dir", str(folder), *extra])
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads(result.stdout)
    return record


def _network(record: dict[str, Any], network_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [n for n in record["networks"] if n["network"] == network_id]
    (entry,) = found
    return entry


def _section(markdown: str, network_name: str) -> str:
    """The Markdown of one network's record: from its heading up to the next network or agreement."""
    start = markdown.index(f"## Network: {network_name} (")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:] if end < 0 else markdown[start:end]


def _assert_complete(n: dict[str, Any]) -> None:
    """Every Art. 30(1) point answered, nothing left undeclared."""
    assert n["missing"] == [], n["missing"]
    controllers = n["controllers"]
    assert controllers["controller"]["name"] and controllers["controller"]["contact"]
    assert controllers["dpo"]["name"] and controllers["dpo"]["contact"]
    assert all(j["agency"] in n["members"] and j["contact"] for j in controllers["joint_controllers"])
    assert n["purposes"] and all(p["description"] and p["legal_bases"] for p in n["purposes"])
    categories = {s["category"] for s in n["data_subjects"]}
    assert {"referred_persons", "agency_staff"} <= categories and all(s["data"] for s in n["data_subjects"])
    assert n["personal_data"] and all(d["views"] for d in n["personal_data"])
    assert n["recipients"] and all(r["to"] and r["views"] for r in n["recipients"])
    assert n["transfers"] is not None
    assert n["retention"] and all(r["retention"] for r in n["retention"])
    assert {m["id"] for m in n["security_measures"]} >= {
        "encryption_at_rest", "audit_log", "access_control", "console_authentication", "retention_and_erasure",
    }
    assert all(m["measure"] for m in n["security_measures"])
    for keys in ART30_ITEMS.values():
        for key in keys:
            # An empty list of transfers is the file's `transfers: none`, an answer; None would be silence.
            assert n[key] is not None and (n[key] != [] or key == "transfers"), key


@pytest.mark.parametrize(("folder", "network_id"), SHIPPED, ids=[n for _, n in SHIPPED])
def test_every_shipped_network_has_every_item_in_json(folder: Path, network_id: str) -> None:
    n = _network(_cli_json(folder, "--format", "json"), network_id)
    assert n["training"] is False
    _assert_complete(n)


@pytest.mark.parametrize(("folder", "network_id"), SHIPPED, ids=[n for _, n in SHIPPED])
def test_every_shipped_network_has_every_item_in_markdown(folder: Path, network_id: str) -> None:
    result = runner.invoke(cli, ["policy", "ropa", "--dir", str(folder), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    n = _network(_cli_json(folder, "--json"), network_id)
    section = _section(result.stdout, n["name"])
    assert "Not declared" not in section
    for heading in HEADINGS.values():
        body = section.split(heading, 1)[1].split("\n### ", 1)[0]
        assert body.strip(), heading
    assert f"- Controller: {n['controllers']['controller']['name']}" in section
    assert f"- Data-protection officer: {n['controllers']['dpo']['name']}" in section
    assert "### (c) Categories of data subjects\n\n- **referred_persons**" in section
    for measure in n["security_measures"]:
        assert f"- **{measure['id']}**: {measure['measure']}" in section
    special = [d["item"] for d in n["personal_data"] if d["special_category"]]
    assert special, "every shipped network shares some special-category data under an Art. 9 condition"
    for item in special:
        assert any(line.startswith(f"| {item} |") and "| yes |" in line for line in section.splitlines()), item


def test_the_shipped_networks_are_all_covered() -> None:
    assert {n for _, n in SHIPPED} >= {"demo-city", "demo-town", "kumanovo-cat", "tripoli-lpn", "nyc-interagency",
                                       "kenya-county-forum"}
    for folder in FOLDERS:
        files = {p.stem for p in (folder / "networks").glob("*.yaml")}
        assert files == {n for f, n in SHIPPED + TRAINING if f == folder}


@pytest.mark.parametrize(("folder", "network_id"), TRAINING, ids=[n for _, n in TRAINING])
def test_a_training_network_is_marked(folder: Path, network_id: str) -> None:
    n = _network(_cli_json(folder, "--json"), network_id)
    assert n["training"] is True
    markdown = runner.invoke(cli, ["policy", "ropa", "--dir", str(folder)]).stdout
    assert "> Training network: synthetic people and cases only." in _section(markdown, n["name"])


def test_the_demo_record_says_what_it_shares() -> None:
    record = ropa(load_agreements(POLICIES).policy_set)
    city = _network(record, "demo-city")
    assert city["controllers"]["controller"]["contact"] == "prevention@demo-city.example"
    assert {j["agency"] for j in city["controllers"]["joint_controllers"]} == {
        "city-social-services", "city-community-police"}
    assert city["controllers"]["representative"] is None
    assert city["transfers"] == []
    data = {(d["kind"], d["item"]): d for d in city["personal_data"]}
    assert data[("referral", "subject.ethnicity")]["special_category"]
    assert data[("note", "health")]["special_category"] and data[("note", "police")]["criminal_offence"]
    assert data[("referral", "subject.phone")]["direct_identifier"]
    assert not data[("referral", "subject.district")]["special_category"]
    retention = {r["data"]: r["retention"] for r in city["retention"]}
    assert retention["referral.summary"] == ["P1Y after closed", "P90D"]
    assert retention["referral never closed"] == ["P10Y after created"]
    police = [r for r in city["recipients"] if r["to"].get("sectors") == ["police"]]
    assert police and all(v in ("referral.police", "notes.shared") for r in police for v in r["views"])
    purposes = {p["id"]: p for p in city["purposes"]}
    assert purposes["statistics"]["agreements"] == ["demo-city", "national-statistics"]
    json.dumps(record)


def test_a_setting_change_is_reflected_in_the_security_measures() -> None:
    policy_set = load_agreements(POLICIES).policy_set
    before = {m["id"]: m for m in _network(ropa(policy_set, load_settings()), "demo-city")["security_measures"]}
    changed = load_settings(token_ttl_seconds=300, console_idle_minutes=12, retention_interval_seconds=0,
                            checkpoint_interval_seconds=0, keyring_json='{"keys": []}', max_open_retention="P7Y")
    after = {m["id"]: m for m in _network(ropa(policy_set, changed), "demo-city")["security_measures"]}
    assert "valid 15 minutes" in before["api_authentication"]["measure"]
    assert "valid 5 minutes" in after["api_authentication"]["measure"]
    assert after["api_authentication"]["settings"]["token_ttl_seconds"] == 300
    assert "12 minutes idle" in after["console_authentication"]["measure"]
    assert "only when run" in after["retention_and_erasure"]["measure"]
    assert "P7Y after it was made" in after["retention_and_erasure"]["measure"]
    assert "made on demand" in after["audit_log"]["measure"]
    assert after["encryption_at_rest"]["settings"]["keyring"] == "environment"
    assert before["encryption_at_rest"]["settings"]["keyring"] == "file"
    assert "never use this mode" in before["transport"]["measure"]
    assert "P7Y after created" in ropa_markdown(policy_set, changed)


@pytest.fixture
def bare_network(tmp_path: Path) -> Path:
    """A copy of the demo policies whose demo-town network file declares no controller, DPO or transfers."""
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    path = folder / "networks" / "demo-town.yaml"
    text = path.read_text("utf-8")
    path.write_text(text[: text.index("# The record of processing")], "utf-8")
    return folder


def test_what_a_network_file_leaves_out_is_listed_not_guessed(bare_network: Path) -> None:
    record = _cli_json(bare_network, "--json")
    town = _network(record, "demo-town")
    assert town["missing"] == ["controller", "dpo", "transfers"]
    assert town["controllers"]["controller"] is None and town["transfers"] is None
    assert _network(record, "demo-city")["missing"] == []
    markdown = runner.invoke(cli, ["policy", "ropa", "--dir", str(bare_network)]).stdout
    section = _section(markdown, "Demo Town Community Action Team")
    assert "> Not declared in the network file: controller, dpo, transfers." in section
    assert "- Controller: none declared" in section


def _network_errors(tmp_path: Path, extra: str) -> list[str]:
    folder = tmp_path / "networks"
    folder.mkdir()
    text = (POLICIES / "networks" / "demo-town.yaml").read_text("utf-8")
    (folder / "demo-town.yaml").write_text(text[: text.index("# The record of processing")] + extra, "utf-8")
    networks, errors = load_networks(folder)
    assert not networks
    return [e.reason for e in errors]


def test_a_joint_controller_must_be_a_member(tmp_path: Path) -> None:
    reasons = _network_errors(tmp_path, "joint_controllers:\n  - {agency: city-municipality, name: X, contact: x}\n")
    assert reasons == ["the joint controller 'city-municipality' is not a member of the network"]


@pytest.mark.parametrize("transfer", [
    "{recipient: X, safeguard: derogation}",
    "{recipient: X, country_code: US, international_organisation: true, safeguard: derogation}",
    "{recipient: X, country_code: usa, safeguard: derogation}",
    "{recipient: X, country_code: US, safeguard: good_faith}",
])
def test_a_transfer_names_where_and_a_safeguard(tmp_path: Path, transfer: str) -> None:
    assert _network_errors(tmp_path, f"transfers: [{transfer}]\n")


def test_declared_transfers_are_recipients_too(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    path = folder / "networks" / "demo-town.yaml"
    text = path.read_text("utf-8").replace(
        "transfers: none", "transfers:\n  - {recipient: UNICEF regional office, international_organisation: true,"
                           " safeguard: administrative_arrangement}\n  - {recipient: Partner NGO, country_code: 'NO',"
                           " safeguard: adequacy_decision}")  # quoted: YAML reads a bare NO (Norway) as false
    path.write_text(text, "utf-8")
    town = _network(_cli_json(folder, "--json"), "demo-town")
    assert [(t["recipient"], t["country"], t["international_organisation"]) for t in town["transfers"]] == [
        ("UNICEF regional office", None, True), ("Partner NGO", "NO", False)]
    abroad = [r for r in town["recipients"] if "third_country" in r["to"]]
    assert [r["to"]["third_country"] for r in abroad] == [["international organisation"], ["NO"]]
    markdown = runner.invoke(cli, ["policy", "ropa", "--dir", str(folder)]).stdout
    assert "| Partner NGO | NO | adequacy_decision |" in _section(markdown, "Demo Town Community Action Team")
