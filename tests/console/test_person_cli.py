"""casebridge person …: adding people (generated or given passwords, weak ones refused), listing, disabling,
enabling, resetting a password or a second factor; each checked by signing in through the console over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from support.console import PASSWORD, ConsoleClient
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.console.models import ConsoleSession, Person
from app.state import AppState

runner = CliRunner()
Browser = Callable[[], ConsoleClient]
SignedIn = Callable[..., ConsoleClient]
STRONG = "amber kettle under the bridge"  # noqa: S105 - a test password


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings, console_people: dict[str, str]) -> None:
    """The command line pointed at the running app's database and keyring (the demo network and people in it)."""
    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(settings.resolved_keyring_path))
    monkeypatch.setenv("CASEBRIDGE_AUTO_MIGRATE", "false")
    monkeypatch.setenv("CASEBRIDGE_SEED_DEMO", "false")


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def assert_refused(code: int, stdout: str, stderr: str, *needles: str) -> None:
    """A refusal: exit 1, one `error:` line on stderr, no traceback, nothing on stdout."""
    assert code == 1, (code, stdout, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stdout + stderr and stdout.strip() == ""
    for needle in needles:
        assert needle in stderr, (needle, stderr)


def sign_in(client: ConsoleClient, person_id: str, password: str) -> Any:
    client.get("/console/sign-in")
    return client.accept_conduct(client.post("/console/sign-in", {"person": person_id, "password": password,
                                                                  "next": "/console/"}))


def signs_in(browser: Browser, person_id: str, password: str) -> bool:
    response = sign_in(browser(), person_id, password)
    return response.status_code == 200 and str(response.url).endswith("/console/")


def person(state: AppState, person_id: str) -> Person | None:
    with state.read_sessions() as session:
        found = session.get(Person, person_id)
        if found is not None:
            session.expunge(found)
        return found


def sessions_of(state: AppState, person_id: str) -> int:
    with state.read_sessions() as session:
        return session.query(ConsoleSession).filter(ConsoleSession.person_id == person_id).count()


def listed(agency: str | None = None) -> dict[str, dict[str, Any]]:
    code, stdout, stderr = run("person", "list", "--json", *(("--agency", agency) if agency else ()))
    assert code == 0, stderr
    return {row["id"]: row for row in json.loads(stdout)}


def test_add_with_a_generated_password_shows_it_once_and_it_signs_in(
    env: None, browser: Browser, state: AppState
) -> None:
    code, stdout, stderr = run("person", "add", "--id", "lina-caseworker", "--agency", "city-social-services",
                               "--name", "Lina Caseworker", "--roles", "caseworker,referrer")
    assert code == 0, stderr
    created = json.loads(stdout)
    password = created["password"]
    assert created["id"] == "lina-caseworker" and created["agency"] == "city-social-services"
    assert len(password) >= 12 and stdout.count(password) == 1 and password not in stderr
    assert "cannot be shown again" in stderr
    stored = person(state, "lina-caseworker")
    assert stored is not None and stored.password_hash is not None and password not in stored.password_hash
    assert stored.password_hash.startswith("$argon2id$")
    row = listed("city-social-services")["lina-caseworker"]
    assert row == {"id": "lina-caseworker", "agency": "city-social-services", "name": "Lina Caseworker",
                   "roles": ["caseworker", "referrer"], "second_factor": False, "sign_in": "password",
                   "disabled": False}
    code, stdout, _ = run("person", "list", "--json")
    assert password not in stdout and "argon2" not in stdout
    assert signs_in(browser, "lina-caseworker", password)
    assert not signs_in(browser, "lina-caseworker", PASSWORD)


@pytest.mark.parametrize(("password", "problem"), [
    ("short pass", "too-short"),
    ("passwordpassword", "common"),
    ("correcthorsebatterystaple", "common"),
    ("aaaaaaaaaaaaaaab", "common"),  # too few different characters
    ("rafi-worker and more", "personal"),  # contains the id
    ("x" * 129, "too-long"),
])
def test_add_refuses_a_weak_password_from_stdin(env: None, state: AppState, password: str, problem: str) -> None:
    code, stdout, stderr = run("person", "add", "--id", "rafi-worker", "--agency", "school-north", "--name",
                               "Rafi Worker", "--roles", "referrer", "--password-stdin", stdin=password + "\n")
    assert_refused(code, stdout, stderr, problem)
    assert password not in stderr
    assert person(state, "rafi-worker") is None


def test_add_with_a_password_from_stdin(env: None, browser: Browser, state: AppState) -> None:
    code, stdout, stderr = run("person", "add", "--id", "rafi-worker", "--agency", "school-north", "--name",
                               "Rafi Worker", "--roles", "referrer", "--password-stdin", "--json",
                               stdin=STRONG + "\n")
    assert code == 0, stderr
    assert STRONG not in stdout + stderr and "password" not in json.loads(stdout)
    assert signs_in(browser, "rafi-worker", STRONG)


def test_add_refuses_a_taken_id_an_unknown_agency_and_bad_input(env: None, state: AppState) -> None:
    base = ("--name", "Someone New", "--roles", "referrer", "--password-stdin")
    assert_refused(*run("person", "add", "--id", "rana-referrer", "--agency", "school-north", *base,
                        stdin=STRONG + "\n"), "already taken")
    # An API client's id is taken too (each person is also a client of the same id).
    assert_refused(*run("person", "add", "--id", "school-north-referrer", "--agency", "school-north", *base,
                        stdin=STRONG + "\n"), "already taken")
    assert_refused(*run("person", "add", "--id", "new-person", "--agency", "no-such-agency", *base,
                        stdin=STRONG + "\n"), "no agency")
    assert_refused(*run("person", "add", "--id", "new-person", "--agency", "school-north", "--name", "N",
                        "--roles", "superuser", "--password-stdin", stdin=STRONG + "\n"), "roles")
    assert_refused(*run("person", "add", "--id", "Not A Slug", "--agency", "school-north", *base,
                        stdin=STRONG + "\n"), "--id")
    assert person(state, "new-person") is None and person(state, "Not A Slug") is None
    original = person(state, "rana-referrer")
    assert original is not None and original.name == "Rana Referrer"


def test_disable_ends_the_session_and_sign_in_until_enabled(
    env: None, signed_in: SignedIn, browser: Browser, state: AppState
) -> None:
    open_session = signed_in("rana-referrer")
    code, stdout, stderr = run("person", "disable", "rana-referrer", "--json")
    assert code == 0 and json.loads(stdout) == {"id": "rana-referrer", "disabled": True}, stderr
    assert sessions_of(state, "rana-referrer") == 0
    after = open_session.get("/console/", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/console/sign-in")
    assert not signs_in(browser, "rana-referrer", PASSWORD)
    assert listed()["rana-referrer"]["disabled"] is True
    code, stdout, stderr = run("person", "enable", "rana-referrer")
    assert code == 0 and "enabled rana-referrer" in stdout, stderr
    assert signs_in(browser, "rana-referrer", PASSWORD)
    assert_refused(*run("person", "disable", "nobody-here"), "no person")


def test_enable_ends_a_lockout(env: None, browser: Browser, state: AppState) -> None:
    client = browser()
    for n in range(5):
        assert sign_in(client, "hadi-caseworker", f"wrong guess {n}").status_code == 401
    assert not signs_in(browser, "hadi-caseworker", PASSWORD)
    assert run("person", "enable", "hadi-caseworker")[0] == 0
    assert signs_in(browser, "hadi-caseworker", PASSWORD)


def test_reset_password_ends_sessions_and_the_old_password(
    env: None, signed_in: SignedIn, browser: Browser, state: AppState
) -> None:
    open_session = signed_in("rana-referrer")
    code, stdout, stderr = run("person", "reset-password", "rana-referrer")
    assert code == 0, stderr
    new = json.loads(stdout)["password"]
    assert len(new) >= 12 and new != PASSWORD
    assert open_session.get("/console/", follow_redirects=False).status_code == 303
    assert not signs_in(browser, "rana-referrer", PASSWORD)
    assert signs_in(browser, "rana-referrer", new)
    # From stdin: a weak one is refused and the password stays as it was.
    assert_refused(*run("person", "reset-password", "rana-referrer", "--password-stdin",
                        stdin="rana-referrer-2024\n"), "personal")
    assert signs_in(browser, "rana-referrer", new)
    code, stdout, stderr = run("person", "reset-password", "rana-referrer", "--password-stdin", stdin=STRONG + "\n")
    assert code == 0 and json.loads(stdout) == {"id": "rana-referrer"}, stderr
    assert signs_in(browser, "rana-referrer", STRONG) and not signs_in(browser, "rana-referrer", new)


def test_reset_second_factor_asks_for_a_new_enrolment(
    env: None, signed_in: SignedIn, browser: Browser, state: AppState
) -> None:
    open_session = signed_in("karim-coordinator")  # enrols on the way
    stored = person(state, "karim-coordinator")
    assert stored is not None and stored.totp_sealed is not None
    assert listed()["karim-coordinator"]["second_factor"] is True
    code, stdout, stderr = run("person", "reset-second-factor", "karim-coordinator", "--json")
    assert code == 0 and json.loads(stdout) == {"id": "karim-coordinator", "second_factor": False}, stderr
    assert open_session.get("/console/", follow_redirects=False).status_code == 303
    assert listed()["karim-coordinator"]["second_factor"] is False
    client = browser()
    asked = sign_in(client, "karim-coordinator", PASSWORD)
    assert str(asked.url).endswith("/console/sign-in/enrol") and 'id="totp-secret"' in asked.text


def test_the_commands_are_documented(env: None) -> None:
    for command in ("add", "list", "disable", "enable", "reset-password", "reset-second-factor"):
        code, stdout, _ = run("person", command, "-h")
        assert code == 0 and "Usage" in stdout, command
