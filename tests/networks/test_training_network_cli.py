"""`casebridge training-network create`, and `policy check` refusing files that join training and real networks."""

from __future__ import annotations

import json
import re
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.training_network import synthetic
from app.training_network.synthetic import Synthesizer

REPO_POLICIES = Path(__file__).resolve().parents[2] / "policies"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(REPO_POLICIES, folder)
    return folder


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, policies: Path) -> Path:
    data = tmp_path / "cli-data"
    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(data))
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", database_url)
    monkeypatch.setenv("CASEBRIDGE_POLICIES_DIR", str(policies))
    monkeypatch.delenv("CASEBRIDGE_KEYRING_PATH", raising=False)
    return data


class TestCreate:
    def test_creates_a_signed_training_network_with_people_of_each_locale(self, env: Path, policies: Path) -> None:
        code, stdout, stderr = run("training-network", "create", "--id", "training-skopje", "--locale", "mk",
                                   "--locale", "sq", "--people", "8", "--seed", "7", "--json")
        assert code == 0, stderr
        made = json.loads(stdout)
        assert made["network"] == "training-skopje" and made["training"] is True and made["referrals"] == 8
        assert {c["client_id"] for c in made["clients"]} == {
            f"training-skopje-{s}" for s in ("coordinator", "school-referrer", "social-caseworker", "youth-reader",
                                             "auditor")}
        assert sorted(p["locale"] for p in made["people"]) == ["mk"] * 4 + ["sq"] * 4
        for person in made["people"]:
            assert person["id"].startswith("training-skopje-") and person["password"]
            if person["locale"] == "mk":
                assert re.fullmatch(r"[\u0400-\u04ff]+ [\u0400-\u04ff]+", person["name"]), person["name"]
            else:
                given, family = person["name"].split(" ")
                assert given in synthetic._SQ_GIVEN and family in synthetic._SQ_FAMILY
        network_file = policies / "networks" / "training-skopje.yaml"
        assert [str(network_file), str(policies / "training-skopje.yaml")] == made["files"]
        assert "training: true" in network_file.read_text()
        for path in made["credentials_files"]:
            assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
        assert json.loads(Path(made["credentials_files"][0]).read_text()) == made["clients"]
        check = run("policy", "check", "--dir", str(policies), "--json")
        assert check[0] == 0 and "training-skopje" not in check[1]  # no finding about it

        again = run("training-network", "create", "--id", "training-skopje", "--json")
        assert again[0] == 1 and "exists already" in again[2]
        assert "training: true" in network_file.read_text()

    def test_refuses_bad_options_changing_nothing(self, env: Path, policies: Path) -> None:
        before = sorted(p.name for p in policies.rglob("*.yaml"))
        for args in (["--id", "city-two"], ["--people", "3"], ["--id", "training-" + "x" * 40]):
            code, _, stderr = run("training-network", "create", *args)
            assert code == 2 and stderr.strip(), args
        code, _, stderr = run("training-network", "create", "--locale", "fr")
        assert code == 2
        assert sorted(p.name for p in policies.rglob("*.yaml")) == before


class TestSynthetic:
    def test_one_seed_gives_the_same_people_and_each_locale_its_own_script(self) -> None:
        first, second = Synthesizer(3), Synthesizer(3)
        for locale in synthetic.LOCALES:
            a, b = first.person(locale), second.person(locale)
            assert a == b and first.narrative(a) == second.narrative(b)
        people = {locale: Synthesizer(5).person(locale) for locale in synthetic.LOCALES}
        assert re.search("[\u0600-\u06ff]", people["ar"].name) and re.search("[\u0600-\u06ff]", people["ar"].place)
        assert re.search("[\u0400-\u04ff]", people["mk"].name) and re.search("[\u0400-\u04ff]", people["mk"].place)
        assert people["sq"].place in synthetic._PLACES["sq"]
        assert people["en"].name.isascii()
        for locale, person in people.items():
            assert person.given_name in Synthesizer(5).narrative(person) or locale != "en"


class TestLoadTimeRefusals:
    def test_an_agreement_naming_a_training_and_a_real_network_is_refused(self, policies: Path) -> None:
        text = (policies / "national-statistics.yaml").read_text()
        mixed = text.replace("agreement: national-statistics", "agreement: national-mixed").replace(
            "networks: [demo-city, demo-town]", "networks: [demo-city, training-demo]")
        (policies / "national-mixed.yaml").write_text(mixed)
        code, stdout, _ = run("policy", "check", "--dir", str(policies), "--json")
        assert code == 1
        findings = [f for f in json.loads(stdout) if f["level"] == "error"]
        assert any("training network 'training-demo' and real network 'demo-city'" in f["message"] for f in findings)

    def test_an_agency_in_a_training_and_a_real_network_is_refused(self, policies: Path) -> None:
        path = policies / "networks" / "training-demo.yaml"
        path.write_text(path.read_text().replace("members: [", "members: [school-north, "))
        code, stdout, _ = run("policy", "check", "--dir", str(policies), "--json")
        assert code == 1
        messages = [f["message"] for f in json.loads(stdout) if f["level"] == "error"]
        assert any("agency 'school-north' is a member of training network 'training-demo'" in m for m in messages)
        loaded = run("policy", "check", "--dir", str(policies))[1]
        assert "training-demo@" not in loaded and "demo-city@" in loaded  # the real networks still serve
