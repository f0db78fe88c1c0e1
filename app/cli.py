"""The casebridge command: run the service and operate it. Commands call services, never HTTP."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.agreements.cli import policy_cli
from app.audit.cli import audit_cli
from app.config import ConfigError, load_settings
from app.crypto.cli import rotate as keys_rotate
from app.crypto.keyring import Keyring, KeyringError
from app.errors import AppError
from app.retention.cli import backup, restore, retention_cli
from app.state import AppState

cli = typer.Typer(help="CaseBridge: information sharing for prevention networks.", no_args_is_help=True)
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
cli.command("backup")(backup)
cli.command("restore")(restore)
keys_cli.command("rotate")(keys_rotate)

out = Console()
err = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


@contextmanager
def service_state(*, migrate_now: bool | None = None) -> Iterator[AppState]:
    from app.bootstrap import build_state

    try:
        state = build_state(load_settings(), migrate_now=migrate_now)
    except (ConfigError, KeyringError) as exc:
        raise fail(str(exc)) from None
    try:
        yield state
    finally:
        state.engine.dispose()


@contextmanager
def unit_of_work() -> Iterator[tuple[Any, AppState]]:
    from app.db import transaction

    with service_state() as state:
        try:
            with transaction(state.sessions) as session:
                yield session, state
        except AppError as exc:
            raise fail(exc.detail) from None


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


# -- serve -------------------------------------------------------------------------------


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Start the API server (migrates and seeds the demo network in dev)."""
    from app.serving import run_server

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None
    run_server(host or settings.host, port or settings.port, workers)


# -- db ----------------------------------------------------------------------------------


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to a revision (head by default)."""
    from app import migrate

    with service_state(migrate_now=False) as state:
        migrate.upgrade(state.engine, revision, keyring=state.keyring)
        out.print(f"database at {', '.join(sorted(migrate.current_revisions(state.engine)))}")


@db_cli.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to a revision."""
    from app import migrate

    with service_state(migrate_now=False) as state:
        migrate.downgrade(state.engine, revision, keyring=state.keyring)
        out.print(f"database at {', '.join(sorted(migrate.current_revisions(state.engine))) or 'base'}")


@db_cli.command("current")
def db_current() -> None:
    """Show the database's revision and whether it is at head."""
    from app import migrate

    with service_state(migrate_now=False) as state:
        current = migrate.current_revisions(state.engine)
        at_head = current == migrate.head_revisions()
        out.print(f"{', '.join(sorted(current)) or 'base'} ({'head' if at_head else 'behind head'})")


# -- agencies ----------------------------------------------------------------------------


@agency_cli.command("add")
def agency_add(
    agency_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str, typer.Option(help="Display name.")],
    sector: Annotated[str, typer.Option(help="One of the sectors in DESIGN §2.")],
) -> None:
    """Add an agency."""
    from pydantic import ValidationError

    from app.agencies.schemas import AgencyIn
    from app.agencies.service import add_agency

    try:
        data = AgencyIn(id=agency_id, name=name, sector=sector)
    except ValidationError as exc:
        raise fail(_validation_message(exc)) from None
    with unit_of_work() as (session, _):
        agency = add_agency(session, data)
        out.print(f"added agency {agency.id} ({agency.sector})")


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


@client_cli.command("add")
def client_add(
    agency: Annotated[str, typer.Option(help="Agency id the client acts for.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    roles: Annotated[str, typer.Option(help="Comma-separated roles.")],
    client_id: Annotated[str | None, typer.Option("--id", help="Client id (generated if omitted).")] = None,
) -> None:
    """Add an API client; its secret is printed once and never again."""
    from pydantic import ValidationError

    from app.agencies.schemas import ClientIn
    from app.agencies.service import add_client

    try:
        data = ClientIn(
            agency_id=agency, name=name, id=client_id,
            roles=[r.strip() for r in roles.split(",") if r.strip()],
        )
    except ValidationError as exc:
        raise fail(_validation_message(exc)) from None
    with unit_of_work() as (session, state):
        created = add_client(session, data, cost=state.settings.secret_hash_cost)
        result = {
            "client_id": created.client.id,
            "client_secret": created.secret,
            "agency": created.client.agency_id,
            "roles": created.client.roles,
        }
    out.print_json(json.dumps(result))
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
            {"id": c.id, "agency": c.agency_id, "name": c.name, "roles": list(c.roles),
             "disabled": c.disabled}
            for c in list_clients(session, None, 10_000, agency)
        ]
    print_rows(rows, ["id", "agency", "name", "roles", "disabled"], as_json, "API clients")


@client_cli.command("disable")
def client_disable(client_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Disable a client: its tokens stop working at once."""
    from app.agencies.service import disable_client

    with unit_of_work() as (session, _):
        disable_client(session, client_id)
    out.print(f"disabled client {client_id}")


# -- demo --------------------------------------------------------------------------------


@cli.command()
def demo() -> None:
    """Seed the demo network (idempotent) and print its clients' credentials as JSON."""
    from app.demo import seed_demo, write_credentials

    with unit_of_work() as (session, state):
        credentials = seed_demo(session, state.settings)
    path = write_credentials(credentials, state.settings)
    sys.stdout.write(json.dumps(credentials, indent=2) + "\n")
    err.print(f"credentials also written to {path} (mode 0600)")


# -- keys --------------------------------------------------------------------------------


@keys_cli.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """Key ids, kinds, creation dates and which are active; never the material."""
    with service_state(migrate_now=False) as state:
        rows = [e.public_info() for e in state.keyring.entries]
    print_rows(rows, ["id", "kind", "created", "active"], as_json, "Keyring")


@keys_cli.command("init")
def keys_init(path: Annotated[Path, typer.Argument(help="Where to write the new keyring.")]) -> None:
    """Create a new keyring file (mode 0600) for a production deployment."""
    if path.exists():
        raise fail(f"{path} exists; refusing to overwrite a keyring")
    keyring = Keyring.generate()
    keyring.save(path)
    out.print(f"wrote {len(keyring.entries)} keys to {path}")


@cli.command()
def openapi(output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None) -> None:
    """Print the OpenAPI document the service serves, as YAML."""
    import yaml

    from app.main import create_app

    text = yaml.safe_dump(create_app().openapi(), sort_keys=False, allow_unicode=True, width=100)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def _validation_message(exc: Any) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "input"
    return f"{where}: {first['msg']}"


def main() -> None:
    cli()
