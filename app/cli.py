"""The casebridge command: run the service and operate it. Commands call services, never HTTP.

Conventions (docs/cli.md): -h/--help everywhere, --json on every command that prints, choices as
enums, one-line errors with documented exit codes (app.cli_common.ExitCode), --yes before
destructive commands. Module level imports stay light so --help answers fast: service modules
are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app import __version__
from app.agencies.schemas import Role, Sector
from app.agreements.cli import policy_cli
from app.audit.cli import audit_cli
from app.cli_common import (
    CONTEXT_SETTINGS,
    DEBUG_ENV,
    EXIT_CODES_EPILOG,
    CaseBridgeGroup,
    ExitCode,
    JsonAlways,
    JsonFlag,
    YesFlag,
    comma_choices,
    confirm,
    emit_json,
    err,
    fail,
    out,
    validation_message,
)
from app.console.cli import person_cli
from app.crypto.cli import rotate as keys_rotate
from app.meetings.cli import clocks_cli
from app.retention.cli import backup, restore, retention_cli
from app.training.cli import training_cli
from app.training_network.cli import training_network_cli

if TYPE_CHECKING:
    from app.state import AppState

__all__ = ["JsonFlag", "YesFlag", "ExitCode", "cli", "err", "fail", "main", "out", "print_rows", "service_state"]

cli = typer.Typer(
    name="casebridge",
    cls=CaseBridgeGroup,
    help="CaseBridge: information sharing for prevention networks.",
    epilog=EXIT_CODES_EPILOG,
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
    pretty_exceptions_show_locals=False,  # locals may hold secrets or case data
)
db_cli = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
agency_cli = typer.Typer(help="Agencies of the network.", no_args_is_help=True)
client_cli = typer.Typer(help="API clients acting for agencies.", no_args_is_help=True)
keys_cli = typer.Typer(help="The keyring.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(agency_cli, name="agency")
cli.add_typer(client_cli, name="client")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(policy_cli, name="policy")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(retention_cli, name="retention")
cli.add_typer(clocks_cli, name="clocks")
cli.add_typer(person_cli, name="person")
cli.add_typer(training_cli, name="training")
cli.add_typer(training_network_cli, name="training-network")
cli.command("backup")(backup)
cli.command("restore", epilog="Exit 4 if not confirmed (--yes); nothing is changed then.")(restore)
keys_cli.command("rotate")(keys_rotate)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"casebridge {__version__}")
        raise typer.Exit()


@cli.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", envvar=DEBUG_ENV, help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    """CaseBridge: information sharing for prevention networks."""
    ctx.meta["casebridge.debug"] = debug


@contextmanager
def service_state(*, migrate_now: bool | None = None) -> Iterator[AppState]:
    """The service's state from the settings; its errors become one-line messages (CaseBridgeGroup)."""
    from app.bootstrap import build_state
    from app.config import load_settings

    state = build_state(load_settings(), migrate_now=migrate_now)
    try:
        yield state
    finally:
        state.engine.dispose()


@contextmanager
def unit_of_work() -> Iterator[tuple[Any, AppState]]:
    from app.db import transaction

    with service_state() as state, transaction(state.sessions) as session:
        yield session, state


def print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool, title: str) -> None:
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(", ".join(v) if isinstance(v, list) else str(v) for v in (row[c] for c in columns)))
    out.print(table)


def _done(as_json: bool, text: str, **result: Any) -> None:
    """What a command that only acts prints: a line, or {"status": "ok", ...} with --json."""
    if as_json:
        emit_json({"status": "ok", **result})
    else:
        out.print(text, highlight=False, soft_wrap=True)


# -- serve -------------------------------------------------------------------------------


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"



@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[
        LogLevel | None, typer.Option(case_sensitive=False, help="Log level (default from settings).")
    ] = None,
    proxy_headers: Annotated[bool, typer.Option(
        help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a reverse proxy only)."
    )] = False,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        help="Comma-separated proxy addresses (or networks) whose forwarded headers are trusted."
    )] = None,
    shutdown_timeout: Annotated[float | None, typer.Option(
        min=0.1, max=600, help="Seconds in-flight requests get on SIGTERM (default from settings)."
    )] = None,
) -> None:
    """Start the API server (migrates and seeds the demo network in dev). Its output is its logs (JSON).

    SIGTERM stops it gracefully (docs/observability.md).
    """
    import os

    from app.config import load_settings
    from app.observability import database_kind
    from app.serving import ServeOptions, run_server

    if log_level is not None:
        os.environ["CASEBRIDGE_LOG_LEVEL"] = log_level.value  # the workers read their settings
    if forwarded_allow_ips is not None and not proxy_headers:
        raise fail("--forwarded-allow-ips needs --proxy-headers")
    settings = load_settings()
    run_server(ServeOptions(
        host=host or settings.host, port=settings.port if port is None else port, workers=workers,
        log_level=settings.log_level, proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips or ("127.0.0.1" if proxy_headers else None),
        shutdown_timeout=shutdown_timeout or settings.shutdown_timeout_seconds,
        database=database_kind(settings.resolved_database_url),
    ))


# -- db ----------------------------------------------------------------------------------


def _revisions(revisions: frozenset[str]) -> str:
    return ", ".join(sorted(revisions)) or "base"


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head", as_json: JsonFlag = False) -> None:
    """Apply migrations up to a revision (head by default)."""
    from app import migrate

    with service_state(migrate_now=False) as state:
        migrate.upgrade(state.engine, revision, keyring=state.keyring)
        current = migrate.current_revisions(state.engine)
    _done(as_json, f"database at {_revisions(current)}", revisions=sorted(current))


@db_cli.command("downgrade", epilog="Exit 4 if not confirmed (--yes); nothing is changed then.")
def db_downgrade(revision: str, yes: YesFlag = False, as_json: JsonFlag = False) -> None:
    """Revert migrations down to a revision: destructive (dropped columns lose their data)."""
    from app import migrate

    with service_state(migrate_now=False) as state:
        before = _revisions(migrate.current_revisions(state.engine))
        confirm(f"downgrade the database from {before} to {revision}; dropped columns lose their data", yes=yes)
        migrate.downgrade(state.engine, revision, keyring=state.keyring)
        current = migrate.current_revisions(state.engine)
    _done(as_json, f"database at {_revisions(current)}", revisions=sorted(current))


@db_cli.command("current")
def db_current(as_json: JsonFlag = False) -> None:
    """Show the database's revision and whether this code can serve it (docs/upgrades.md)."""
    from app import migrate

    with service_state(migrate_now=False) as state:
        current = migrate.current_revisions(state.engine)
        schema = migrate.schema_state(state.engine)
    if as_json:
        emit_json({"revisions": sorted(current), "at_head": schema.status == "ok", "state": schema.status,
                   "servable": schema.servable})
    else:
        label = {"ok": "head", "behind": "behind head", "ahead": "ahead of head, compatible with this code",
                 "ahead-incompatible": "ahead of head, not compatible with this code"}
        out.print(f"{_revisions(current)} ({label.get(schema.status, 'unknown to this code')})", highlight=False)


# -- agencies ----------------------------------------------------------------------------


@agency_cli.command("add")
def agency_add(
    agency_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str, typer.Option(help="Display name.")],
    sector: Annotated[Sector, typer.Option(help="The agency's sector (DESIGN §2).")],
    as_json: JsonFlag = False,
) -> None:
    """Add an agency."""
    from pydantic import ValidationError

    from app.agencies.schemas import AgencyIn
    from app.agencies.service import add_agency

    try:
        data = AgencyIn(id=agency_id, name=name, sector=sector)
    except ValidationError as exc:
        raise fail(validation_message(exc)) from None
    with unit_of_work() as (session, _):
        agency = add_agency(session, data)
        result = {"id": agency.id, "name": agency.name, "sector": agency.sector}
    _done(as_json, f"added agency {result['id']} ({result['sector']})", **result)


@agency_cli.command("list")
def agency_list(as_json: JsonFlag = False) -> None:
    """List agencies."""
    from app.agencies.repository import list_agencies

    with unit_of_work() as (session, _):
        rows = [
            {"id": a.id, "name": a.name, "sector": a.sector, "created_at": a.created_at.isoformat()}
            for a in list_agencies(session, None, 10_000)
        ]
    print_rows(rows, ["id", "name", "sector", "created_at"], as_json, "Agencies")


# -- clients -----------------------------------------------------------------------------

ROLE_NAMES = ", ".join(Role)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@client_cli.command("add")
def client_add(
    agency: Annotated[str, typer.Option(help="Agency id the client acts for.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    roles: Annotated[str, typer.Option(callback=comma_choices(Role), help=f"Comma-separated roles: {ROLE_NAMES}.")],
    client_id: Annotated[str | None, typer.Option("--id", help="Client id (generated if omitted).")] = None,
    as_json: JsonAlways = False,
) -> None:
    """Add an API client; its secret is printed once (JSON) and never again."""
    from pydantic import ValidationError

    from app.agencies.schemas import ClientIn
    from app.agencies.service import add_client

    try:
        data = ClientIn(agency_id=agency, name=name, id=client_id, roles=_split(roles))
    except ValidationError as exc:
        raise fail(validation_message(exc)) from None
    with unit_of_work() as (session, state):
        created = add_client(session, data, hasher=state.secret_hasher)
        result = {
            "client_id": created.client.id,
            "client_secret": created.secret,
            "agency": created.client.agency_id,
            "roles": created.client.roles,
        }
    emit_json(result)
    err.print("Store the secret now: it is not kept and cannot be shown again.")


@client_cli.command("list")
def client_list(
    agency: Annotated[str | None, typer.Option(help="Only this agency's clients.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List API clients (never their secrets)."""
    from app.agencies.repository import list_clients

    with unit_of_work() as (session, _):
        rows = [
            {"id": c.id, "agency": c.agency_id, "name": c.name, "roles": list(c.roles), "disabled": c.disabled}
            for c in list_clients(session, None, 10_000, agency)
        ]
    print_rows(rows, ["id", "agency", "name", "roles", "disabled"], as_json, "API clients")


@client_cli.command("disable")
def client_disable(client_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonFlag = False) -> None:
    """Disable a client: its tokens stop working at once (no confirmation: it is the emergency brake)."""
    from app.agencies.service import disable_client

    with unit_of_work() as (session, _):
        disable_client(session, client_id)
    _done(as_json, f"disabled client {client_id}", client_id=client_id, disabled=True)


# -- demo --------------------------------------------------------------------------------


@cli.command()
def demo(as_json: JsonAlways = False) -> None:
    """Seed the demo network (idempotent) and print its clients' credentials as JSON."""
    from app.demo import seed_demo, seed_demo_cases, write_credentials

    with unit_of_work() as (session, state):
        credentials = seed_demo(session, state)
        seed_demo_cases(session, state)  # only into a database without referrals
    path = write_credentials(credentials, state.settings)
    sys.stdout.write(json.dumps(credentials, indent=2) + "\n")
    err.print(f"credentials also written to {path} (mode 0600)", highlight=False, soft_wrap=True)


# -- keys --------------------------------------------------------------------------------


@keys_cli.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """Key ids, kinds, creation dates and which are active; never the material."""
    with service_state(migrate_now=False) as state:
        rows = [e.public_info() for e in state.keyring.entries]
    print_rows(rows, ["id", "kind", "created", "active"], as_json, "Keyring")


@keys_cli.command("init")
def keys_init(
    path: Annotated[Path, typer.Argument(help="Where to write the new keyring.")],
    as_json: JsonFlag = False,
) -> None:
    """Create a new keyring file (mode 0600) for a production deployment; never overwrites one."""
    from app.crypto.keyring import Keyring

    if path.exists():
        raise fail(f"{path} exists; refusing to overwrite a keyring")
    keyring = Keyring.generate()
    keyring.save(path)
    _done(as_json, f"wrote {len(keyring.entries)} keys to {path}", path=str(path), keys=len(keyring.entries))


@cli.command()
def openapi(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The document as JSON instead of YAML.")] = False,
) -> None:
    """Print the OpenAPI document the service serves, as YAML (or JSON)."""
    import yaml

    from app.main import create_app

    document = create_app().openapi()
    if as_json:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def main() -> None:
    """The console script. Errors are handled inside the command group (CaseBridgeGroup)."""
    cli(prog_name="casebridge")


if __name__ == "__main__":  # pragma: no cover
    main()

