"""casebridge person …: the people who sign in to the console (docs/console.md)."""

from __future__ import annotations

import secrets
import sys
from typing import Annotated, Any

import typer

from app.cli_common import JsonAlways, JsonFlag, emit_json

person_cli = typer.Typer(help="People who sign in to the console (each is also an API client of the same id).",
                         no_args_is_help=True)


def _cli() -> Any:
    import app.cli as cli  # late: app.cli imports this module

    return cli


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The password read from standard input, or a generated one (then shown once)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return secrets.token_urlsafe(15), True


@person_cli.command("add")
def person_add(
    person_id: Annotated[str, typer.Option("--id", help="The account name the person signs in with (a slug).")],
    agency: Annotated[str, typer.Option(help="The person's agency.")],
    name: Annotated[str, typer.Option(help="The person's name as shown on pages and in the log's console.")],
    roles: Annotated[str, typer.Option(help="Comma-separated roles.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input "
                                                 "(else one is generated and printed once).")] = False,
    oidc_subject: Annotated[str | None, typer.Option(help="Sign-in only through the identity provider: the "
                                                     "person's `sub` there (no password is set).")] = None,
    locale: Annotated[str | None, typer.Option(help="Preferred language: en, ar, mk or sq.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a person. Coordinators, auditors and admins set up a second factor at their first sign-in."""
    import re

    from app.console import people

    cli = _cli()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}[a-z0-9]", person_id):
        raise cli.fail("--id must be 3 to 64 lower-case letters, digits and hyphens.")
    if locale is not None and locale not in ("en", "ar", "mk", "sq"):
        raise cli.fail("--locale must be one of en, ar, mk, sq.")
    password, generated = (None, False) if oidc_subject else _password(password_stdin)
    with cli.unit_of_work() as (session, state):
        try:
            people.create_person(
                session, person_id=person_id, agency_id=agency, name=name,
                roles=[r.strip() for r in roles.split(",") if r.strip()], password=password, locale=locale,
                oidc_issuer=state.settings.oidc_issuer if oidc_subject else None, oidc_subject=oidc_subject)
        except people.PersonInvalid as exc:
            raise cli.fail(exc.detail) from None
    result: dict[str, Any] = {"id": person_id, "agency": agency, "roles": sorted(roles.split(","))}
    if generated:
        result["password"] = password
    if as_json or generated:
        emit_json(result)
    else:
        cli.out.print(f"added {person_id}", highlight=False)
    if generated:
        cli.err.print("Give the person this password now: it is not kept and cannot be shown again.")


@person_cli.command("list")
def person_list(
    agency: Annotated[str | None, typer.Option(help="Only this agency's people.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List people (never their passwords or second-factor keys)."""
    from sqlalchemy import select

    from app.console.models import Person

    cli = _cli()
    with cli.unit_of_work() as (session, _):
        query = select(Person).order_by(Person.id)
        if agency:
            query = query.where(Person.agency_id == agency)
        rows = [{"id": p.id, "agency": p.agency_id, "name": p.name, "roles": list(p.roles),
                 "second_factor": p.totp_sealed is not None, "sign_in": "oidc" if p.oidc_subject else "password",
                 "disabled": p.disabled} for p in session.scalars(query)]
    cli.print_rows(rows, ["id", "agency", "name", "roles", "second_factor", "sign_in", "disabled"], as_json, "People")


def _person(session: Any, person_id: str) -> Any:
    from app.console.models import Person

    person = session.get(Person, person_id)
    if person is None:
        raise _cli().fail(f"There is no person {person_id}.")
    return person


@person_cli.command("disable")
def person_disable(person_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonFlag = False) -> None:
    """Disable a person: their sessions end and their pages stop at once."""
    from app.console import people

    cli = _cli()
    with cli.unit_of_work() as (session, _):
        people.set_disabled(session, _person(session, person_id), True)
    _done(as_json, f"disabled {person_id}", id=person_id, disabled=True)


@person_cli.command("enable")
def person_enable(person_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonFlag = False) -> None:
    """Enable a disabled person again (and end a lockout)."""
    from app.console import people

    cli = _cli()
    with cli.unit_of_work() as (session, _):
        person = _person(session, person_id)
        people.set_disabled(session, person, False)
        person.locked_until = None
        person.failed_attempts = 0
    _done(as_json, f"enabled {person_id}", id=person_id, disabled=False)


@person_cli.command("reset-password")
def person_reset_password(
    person_id: Annotated[str, typer.Argument(metavar="ID")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the new password from standard "
                                                 "input (else one is generated and printed once).")] = False,
    as_json: JsonAlways = False,
) -> None:
    """Set a new password (ends the person's sessions and any lockout)."""
    from app.console import people
    from app.console.models import ConsoleSession

    cli = _cli()
    password, generated = _password(password_stdin)
    with cli.unit_of_work() as (session, _):
        person = _person(session, person_id)
        try:
            people.set_password(session, person, password)
        except people.PersonInvalid as exc:
            raise cli.fail(exc.detail) from None
        session.query(ConsoleSession).filter(ConsoleSession.person_id == person_id).delete()
    emit_json({"id": person_id, **({"password": password} if generated else {})})


@person_cli.command("reset-second-factor")
def person_reset_second_factor(person_id: Annotated[str, typer.Argument(metavar="ID")],
                               as_json: JsonFlag = False) -> None:
    """Forget the person's authenticator: they set up a new one at their next sign-in."""
    from app.console.models import ConsoleSession

    cli = _cli()
    with cli.unit_of_work() as (session, _):
        person = _person(session, person_id)
        person.totp_sealed = None
        person.totp_last_step = None
        session.query(ConsoleSession).filter(ConsoleSession.person_id == person_id).delete()
    _done(as_json, f"second factor of {person_id} reset", id=person_id, second_factor=False)


def _done(as_json: bool, message: str, **result: Any) -> None:
    if as_json:
        emit_json(result)
    else:
        _cli().out.print(message, highlight=False)
