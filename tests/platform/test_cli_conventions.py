"""The casebridge command's conventions (docs/cli.md), checked on EVERY command of the tree.

The command tree is walked from typer's click command, so a new command is covered without
anyone remembering to: it must take -h, --json (or be listed as printing nothing), be run here
with --json, and ask before destroying anything.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer.main
from sqlalchemy import update
from support.retention import START, rows
from typer.testing import CliRunner

from app import __version__, migrate
from app.cli import cli
from app.cli_common import ExitCode, exit_for
from app.db import make_engine, transaction
from app.referrals.models import Referral
from app.state import AppState

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
ROOT_COMMAND = typer.main.get_command(cli)

# Commands that print nothing of their own (their output is the server's log): no --json.
NO_JSON = {("serve",)}
# Commands that destroy data: they take --yes/-y and refuse without it when not at a terminal.
DESTRUCTIVE = {("db", "downgrade"), ("restore",), ("retention", "run")}
# Options whose values are a fixed set: typer shows the choices in -h.
CHOICES = {
    (("agency", "add"), "sector"),
    (("policy", "explain"), "sector"),
    (("policy", "explain"), "kind"),
    (("policy", "ropa"), "fmt"),
    (("audit", "export"), "format"),
    (("keys", "rotate"), "kind"),
}


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, (*path, name))


EVERY = list(walk(ROOT_COMMAND))
LEAVES = {path: command for path, command in EVERY if not hasattr(command, "commands")}


def options_of(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_clean_error(code: int, stdout: str, stderr: str, expected: int, *needles: str) -> None:
    """An error: the documented code, one `error:` line on stderr, no traceback."""
    assert code == expected, (code, stdout, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr + stdout
    for needle in needles:
        assert needle in stderr, (needle, stderr)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Path:
    """The CLI on a temporary data dir and the test database (SQLite file or PostgreSQL)."""
    data = tmp_path / "cli-data"
    monkeypatch.setenv("CASEBRIDGE_ENV", "dev")
    monkeypatch.setenv("CASEBRIDGE_DATA_DIR", str(data))
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", database_url)
    monkeypatch.setenv("CASEBRIDGE_RETENTION_INTERVAL_SECONDS", "0")
    for name in ("CASEBRIDGE_KEYRING_PATH", "CASEBRIDGE_KEYRING_JSON", "CASEBRIDGE_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return data


def current_revisions(database_url: str) -> frozenset[str]:
    engine = make_engine(database_url)
    try:
        return migrate.current_revisions(engine)
    finally:
        engine.dispose()


# -- -h, --version, the declarations ---------------------------------------------------------


@pytest.mark.parametrize("path", [path for path, _ in EVERY], ids=lambda p: " ".join(p) or "casebridge")
def test_every_command_and_group_takes_dash_h(path: tuple[str, ...]) -> None:
    for flag in ("-h", "--help"):
        code, stdout, stderr = run(*path, flag)
        assert code == 0, stderr
        assert "Usage:" in stdout and "casebridge" in stdout and "Traceback" not in stdout + stderr


def test_the_tree_is_what_this_test_knows() -> None:
    """Walking found the commands (a broken walk would make every other check vacuous)."""
    assert {("serve",), ("db", "downgrade"), ("audit", "verify"), ("policy", "explain")} <= set(LEAVES)
    assert len(LEAVES) >= 28


def test_every_command_with_output_takes_json() -> None:
    missing = [" ".join(p) for p, command in LEAVES.items() if p not in NO_JSON and "--json" not in options_of(command)]
    assert missing == []
    assert all("--json" not in options_of(LEAVES[p]) for p in NO_JSON)


def test_destructive_commands_and_only_they_take_yes() -> None:
    with_yes = {p for p, command in LEAVES.items() if "--yes" in options_of(command)}
    assert with_yes == DESTRUCTIVE
    assert all("-y" in options_of(LEAVES[p]) for p in DESTRUCTIVE)


@pytest.mark.parametrize(("path", "name"), sorted(CHOICES))
def test_fixed_sets_of_values_are_choices_shown_in_help(path: tuple[str, ...], name: str) -> None:
    (param,) = [p for p in LEAVES[path].params if p.name == name]
    annotation = param.type_descriptor.annotation  # what typer builds the option's type from
    assert isinstance(annotation, type) and issubclass(annotation, Enum), (path, name, annotation)
    choices = [member.value for member in annotation]
    assert len(choices) >= 2
    help_text = runner.invoke(cli, [*path, "-h"], env={"COLUMNS": "400"}).stdout  # wide: no wrapped choices
    assert all(choice in help_text for choice in choices)
    flag = list(param.opts[:1]) if param.param_type_name == "option" else []
    code, _, stderr = run(*path, *flag, "not-a-choice")
    assert code == ExitCode.USAGE and "not-a-choice" in stderr and "Traceback" not in stderr


def test_version() -> None:
    code, stdout, _ = run("--version")
    assert code == 0 and stdout.strip() == f"casebridge {__version__}"


def test_exit_codes_are_documented_in_help_and_docs() -> None:
    root_help = re.sub(r"\s+", " ", run("-h")[1])
    docs = (REPO / "docs" / "cli.md").read_text()
    for code in ExitCode:
        assert f"| {code.value} |" in docs
        assert f"{code.value} " in root_help
    assert "Exit codes:" in root_help and "cli.md" in (REPO / "docs" / "design.md").read_text()
    for path in LEAVES:
        assert " ".join(path) in docs, f"docs/cli.md does not list casebridge {' '.join(path)}"


def test_usage_errors_exit_2() -> None:
    assert run("no-such-command")[0] == ExitCode.USAGE
    assert run("agency", "list", "--no-such-option")[0] == ExitCode.USAGE
    code, _, stderr = run("agency", "add", "x-1", "--name", "n", "--sector", "astrology")
    assert code == ExitCode.USAGE and "sector" in stderr
    code, _, stderr = run("policy", "explain", "--agency", "a", "--sector", "police", "--roles", "god",
                          "--purpose", "p")
    assert code == ExitCode.USAGE and "god" in stderr


# -- --json on every command, run for real ---------------------------------------------------


def _json_runs(tmp: Path, sqlite: bool) -> list[tuple[tuple[str, ...], list[str], tuple[int, ...]]]:
    """Every command with safe arguments, in an order that works: (command, argv, exit codes)."""
    ok = (0,)
    explain = ["--agency", "city-community-police", "--sector", "police", "--roles", "caseworker",
               "--relations", "assigned", "--purpose", "intervention_planning", "--kind", "note",
               "--record", "classification=health", "--on", "2026-06-01"]
    completions = tmp / "training.csv"
    completions.write_text("person_id,course_id,completed_on,expires_on\njson-person,data-protection-basics,2026-01-05,\n")
    return [
        (("db", "upgrade"), [], ok),
        (("db", "current"), [], ok),
        (("agency", "add"), ["json-agency", "--name", "JSON", "--sector", "health"], ok),
        (("agency", "list"), [], ok),
        (("client", "add"), ["--agency", "json-agency", "--name", "n", "--roles", "referrer", "--id", "json-c"], ok),
        (("client", "list"), [], ok),
        (("client", "disable"), ["json-c"], ok),
        (("demo",), [], ok),
        (("keys", "list"), [], ok),
        (("keys", "init"), [str(tmp / "new-keyring.json")], ok),
        (("keys", "rotate"), ["audit"], ok),
        (("openapi",), [], ok),
        (("policy", "check"), ["--on", "2026-06-01"], ok),
        (("policy", "test"), [], ok),
        (("policy", "who-can"), ["--view", "referral.summary", "--purpose", "service_provision"], ok),
        (("policy", "prove"), [], ok),
        (("policy", "diff"), [str(REPO / "policies" / "demo-city.yaml")] * 2, ok),
        (("policy", "ropa"), [], ok),
        (("policy", "status"), [], ok),
        (("policy", "explain"), explain, (ExitCode.OK, ExitCode.DENIED)),
        (("audit", "export"), ["--output", str(tmp / "log.jsonl")], ok),
        (("audit", "checkpoint"), [], ok),
        (("audit", "verifier-key"), [], ok),
        (("audit", "verify"), [], ok),
        (("retention", "run"), ["--dry-run"], ok),
        (("retention", "recompute"), [], ok),
        (("retention", "reapply"), [], ok),
        (("clocks", "run"), [], ok),
        (("person", "add"), ["--id", "json-person", "--agency", "json-agency", "--name", "Jo Person",
                             "--roles", "referrer"], ok),
        (("person", "list"), [], ok),
        (("person", "reset-password"), ["json-person"], ok),
        (("person", "reset-second-factor"), ["json-person"], ok),
        (("person", "disable"), ["json-person"], ok),
        (("person", "enable"), ["json-person"], ok),
        (("training", "import"), [str(completions)], ok),
        (("training", "list"), ["--person", "json-person"], ok),
        (("training-network", "create"), ["--dir", str(tmp / "training-policies")], ok),
        (("backup",), [str(tmp / "backup.db")], ok),
        (("restore",), [str(tmp / "backup.db"), "--yes"], ok),
        (("retention", "run"), ["--yes"], ok),
        (("db", "downgrade"), ["head", "--yes"], ok),
    ]


def test_every_command_prints_valid_json(env: Path, tmp_path: Path, database_url: str) -> None:
    sqlite = database_url.startswith("sqlite")
    runs = _json_runs(tmp_path, sqlite)
    assert {path for path, _, _ in runs} == set(LEAVES) - NO_JSON, "a command is not run here with --json"
    for path, args, codes in runs:
        code, stdout, stderr = run(*path, *args, "--json")
        assert code in codes, (path, code, stderr)
        document = json.loads(stdout)  # the whole of stdout is one JSON document
        if path in {("db", "upgrade"), ("db", "downgrade"), ("client", "disable"), ("keys", "init"),
                    ("retention", "recompute")}:
            assert document["status"] == "ok", (path, document)
        if path in {("backup",), ("restore",)}:
            assert document["status"] == ("ok" if sqlite else "instructions")
    assert json.loads(run("db", "current", "--json")[1])["at_head"] is True
    assert json.loads(run("agency", "add", "json-two", "--name", "J", "--sector", "police", "--json")[1]) == {
        "status": "ok", "id": "json-two", "name": "J", "sector": "police"}


# -- destructive commands ------------------------------------------------------------------


def test_db_downgrade_refuses_without_yes_and_changes_nothing(env: Path, database_url: str) -> None:
    before = current_revisions(database_url)
    assert before == migrate.head_revisions()
    code, stdout, stderr = run("db", "downgrade", "base")
    assert_clean_error(code, stdout, stderr, ExitCode.NOT_CONFIRMED, "--yes")
    assert stdout == "" and current_revisions(database_url) == before


def test_db_downgrade_with_yes_downgrades(env: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL test database is shared by the session: downgraded on SQLite only")
    head = sorted(migrate.head_revisions())[0]
    previous = f"{int(head) - 1:04d}"
    code, stdout, stderr = run("db", "downgrade", previous, "-y", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["revisions"] == [previous] == sorted(current_revisions(database_url))
    assert run("db", "upgrade")[0] == 0 and current_revisions(database_url) == migrate.head_revisions()


def test_restore_refuses_without_yes_and_changes_nothing(env: Path, tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL restores are pg_restore's: the command only prints it")
    backup = tmp_path / "before.db"
    assert run("backup", str(backup))[0] == 0
    assert run("agency", "add", "after-backup", "--name", "A", "--sector", "health")[0] == 0
    code, stdout, stderr = run("restore", str(backup))
    assert_clean_error(code, stdout, stderr, ExitCode.NOT_CONFIRMED, "--yes")
    assert "after-backup" in {a["id"] for a in json.loads(run("agency", "list", "--json")[1])}
    assert run("restore", str(backup), "--yes")[0] == 0
    assert "after-backup" not in {a["id"] for a in json.loads(run("agency", "list", "--json")[1])}


def test_retention_run_refuses_without_yes_and_purges_nothing(
    state: AppState, settings: Any, post_referral: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = post_referral()
    with transaction(state.sessions) as session:  # the CLI's clock is the real one: age the record
        session.execute(update(Referral).values(created_at=START - timedelta(days=4000), retain_until=None))
    for name, value in (("ENV", "dev"), ("DATA_DIR", str(settings.data_dir)),
                        ("DATABASE_URL", settings.resolved_database_url),
                        ("KEYRING_PATH", str(settings.resolved_keyring_path))):
        monkeypatch.setenv(f"CASEBRIDGE_{name}", value)
    code, stdout, stderr = run("retention", "run")
    assert_clean_error(code, stdout, stderr, ExitCode.NOT_CONFIRMED, "--yes")
    assert rows(state, Referral, id=created["id"])
    assert run("retention", "run", "--dry-run")[0] == 0  # listing asks nothing
    assert rows(state, Referral, id=created["id"])
    code, _, stderr = run("retention", "run", "--yes")
    assert code == 0, stderr
    assert rows(state, Referral, id=created["id"]) == []


def _spawn_at_terminal(argv: list[str], answer: bytes, env: dict[str, str]) -> tuple[int, str]:
    """Run the real console script with a terminal as stdin, answer its question, collect stderr."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(  # noqa: S603
        argv, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO
    )
    os.close(terminal)
    deadline = time.monotonic() + 60
    asked = b""
    while b"?" not in asked and time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stderr], [], [], 0.5)
        if ready:
            assert process.stderr is not None
            asked += os.read(process.stderr.fileno(), 4096)
    os.write(controller, answer)
    _, rest = process.communicate(timeout=120)
    os.close(controller)
    return process.returncode, (asked + rest).decode()


def test_at_a_terminal_destructive_commands_ask(env: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL test database is shared by the session: downgraded on SQLite only")
    script = [str(Path(sys.executable).with_name("casebridge"))]
    if not Path(script[0]).exists():
        script = [sys.executable, "-c", "from app.cli import main; main()"]
    environment = {**os.environ}
    head = sorted(migrate.head_revisions())[0]
    previous = f"{int(head) - 1:04d}"
    code, stderr = _spawn_at_terminal([*script, "db", "downgrade", previous], b"n\n", environment)
    assert code == ExitCode.NOT_CONFIRMED and "not confirmed" in stderr and "Traceback" not in stderr
    assert current_revisions(database_url) == migrate.head_revisions()
    code, stderr = _spawn_at_terminal([*script, "db", "downgrade", previous], b"y\n", environment)
    assert code == 0, stderr
    assert sorted(current_revisions(database_url)) == [previous]


# -- errors ----------------------------------------------------------------------------------


def test_an_unreachable_database_is_one_line_without_the_password(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", "postgresql+psycopg://someone:hunter2-pw@127.0.0.1:1/none")
    code, stdout, stderr = run("agency", "list", "--json")
    assert_clean_error(code, stdout, stderr, ExitCode.ERROR, "cannot use the database")
    assert "hunter2" not in stdout + stderr and stdout == ""


def test_a_database_url_that_is_no_url_is_a_config_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", "nonsense://someone:hunter2-pw@h/x")
    code, stdout, stderr = run("db", "current")
    assert_clean_error(code, stdout, stderr, ExitCode.ERROR, "CASEBRIDGE_DATABASE_URL")
    assert "hunter2" not in stderr


def test_config_keyring_validation_and_not_found_errors(
    env: Path, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_clean_error(*run("client", "disable", "nobody"), ExitCode.ERROR, "does not exist")
    assert_clean_error(*run("client", "add", "--agency", "none-such", "--name", "n", "--roles", "referrer"),
                       ExitCode.ERROR, "does not exist")
    assert_clean_error(*run("agency", "add", "Not A Slug", "--name", "n", "--sector", "health"),
                       ExitCode.ERROR, "id:")
    if database_url.startswith("sqlite"):  # for PostgreSQL restore only prints the pg_restore command
        assert_clean_error(*run("restore", str(tmp_path / "missing.db"), "--yes"), ExitCode.ERROR, "missing.db")
    assert_clean_error(*run("db", "upgrade", "no-such-revision"), ExitCode.ERROR)
    keyring = tmp_path / "broken-keyring.json"
    keyring.write_text("{not json")
    keyring.chmod(0o600)
    monkeypatch.setenv("CASEBRIDGE_KEYRING_PATH", str(keyring))
    assert_clean_error(*run("keys", "list"), ExitCode.ERROR)
    monkeypatch.delenv("CASEBRIDGE_KEYRING_PATH")
    monkeypatch.setenv("CASEBRIDGE_ENV", "prod")
    monkeypatch.delenv("CASEBRIDGE_DATABASE_URL")
    assert_clean_error(*run("agency", "list"), ExitCode.ERROR, "refusing to start in prod")


def test_a_file_given_as_an_option_must_exist(env: Path, tmp_path: Path) -> None:
    code, _, stderr = run("audit", "verify", "--checkpoint", str(tmp_path / "missing.txt"))
    assert code == ExitCode.USAGE and "Traceback" not in stderr


def test_an_unexpected_error_names_its_type_only(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = exit_for(ValueError("Yasmin's date of birth 2009-04-01"), debug=False)
    assert exit_.exit_code == ExitCode.INTERNAL
    stderr = capsys.readouterr().err
    assert "ValueError" in stderr and "--debug" in stderr
    assert "Yasmin" not in stderr and "Traceback" not in stderr
    exit_ = exit_for(ValueError("boom"), debug=True)
    assert exit_.exit_code == ExitCode.INTERNAL and "ValueError: boom" in capsys.readouterr().err


def test_the_console_script_exits_with_the_documented_code(env: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("casebridge")
    if not script.exists():
        pytest.skip("the console script is not installed in this environment")
    environment = {**os.environ, "CASEBRIDGE_DATABASE_URL": "postgresql+psycopg://u:pw-secret@127.0.0.1:1/none"}
    done = subprocess.run([str(script), "client", "list"], capture_output=True, text=True,  # noqa: S603
                          env=environment, cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == ExitCode.ERROR and done.stdout == ""
    assert done.stderr.startswith("error: cannot use the database") and done.stderr.count("\n") == 1
    assert "pw-secret" not in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60,  # noqa: S603
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"casebridge {__version__}"

