"""What every casebridge command shares: exit codes, -h, --json, --yes, one-line errors.

Imported by app.cli and every app/*/cli.py when the command starts, so it imports nothing heavy:
`casebridge --help` must answer in well under a second (bench/cli_help.py). Service modules are
imported inside the command functions, and the error handler looks exception types up in
``sys.modules`` instead of importing their modules.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from collections.abc import Callable
from enum import IntEnum, StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup


class ExitCode(IntEnum):
    """The documented exit codes (docs/cli.md); scripts and monitoring depend on them."""

    OK = 0
    ERROR = 1  # the command failed, or a check it ran found a problem (audit verify, policy check)
    USAGE = 2  # unknown command or option, a bad option value, a missing argument
    DENIED = 3  # policy explain: the described caller may not see the record
    NOT_CONFIRMED = 4  # a destructive command was not confirmed; nothing was changed
    INTERNAL = 5  # an unexpected error (a bug): rerun with --debug for the traceback
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODES_EPILOG = (
    "Exit codes: 0 ok · 1 error or failed check (e.g. audit verify) · 2 usage · "
    "3 denied (policy explain) · 4 not confirmed (destructive command without --yes) · "
    "5 internal error (rerun with --debug) · 130 interrupted. See docs/cli.md."
)
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
DEBUG_ENV = "CASEBRIDGE_DEBUG"

out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (machine-readable) instead of text.")]
JsonAlways = Annotated[
    bool, typer.Option("--json", help="The output is JSON either way (accepted like every command's --json).")
]
YesFlag = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (required when not run at a terminal).")
]

_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def one_line(message: str) -> str:
    """The first line of a message with any URL password blanked: errors never carry secrets."""
    lines = str(message).strip().splitlines()
    return _URL_PASSWORD.sub(r"\1***@", lines[0] if lines else "")


def fail(message: str, code: int = ExitCode.ERROR) -> typer.Exit:
    """Print a one-line error on stderr and return the Exit to raise (``raise fail(...)``)."""
    err.print(f"[red]error:[/red] {escape(one_line(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(int(code))


def comma_choices(choices: type[StrEnum]) -> Callable[[str], str]:
    """An option callback for a comma-separated list of enum values: an unknown one is a usage error."""
    allowed = {c.value for c in choices}

    def check(value: str) -> str:
        unknown = [p.strip() for p in (value or "").split(",") if p.strip() and p.strip() not in allowed]
        if unknown:
            raise typer.BadParameter(f"unknown {', '.join(unknown)} (choose from {', '.join(sorted(allowed))})")
        return value

    return check


def emit_json(value: Any) -> None:
    """One JSON document on stdout, nothing else: what --json promises."""
    sys.stdout.write(json.dumps(value, default=str) + "\n")


def confirm(action: str, *, yes: bool) -> None:
    """Go on only if confirmed: --yes, or "y" typed at a terminal. Otherwise exit 4, nothing changed.

    A run without a terminal (cron, CI, a pipe) cannot be asked, so it is refused rather than
    assumed: a destructive command must say --yes there.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"refusing to {action} without --yes in a non-interactive run", ExitCode.NOT_CONFIRMED)
    try:
        confirmed = typer.confirm(f"{action[:1].upper()}{action[1:]}?", default=False, err=True)
    except typer.Abort:
        confirmed = False
    if not confirmed:
        raise fail("not confirmed; nothing was changed", ExitCode.NOT_CONFIRMED)


# -- errors --------------------------------------------------------------------------------

# Errors whose message is written for the operator: printed as they are (one line).
_EXPECTED = (
    ("app.config", "ConfigError"),
    ("app.crypto.keyring", "KeyringError"),
    ("app.crypto.rotation", "RotationError"),
    ("app.retention.backup", "BackupError"),
    ("app.retention.ledger", "LedgerError"),
    ("app.retention.purge", "PurgeBusy"),
    ("app.audit.note", "NoteError"),
    ("app.audit.store", "CorruptHead"),
    ("app.policy.yaml_nodes", "YamlSyntaxError"),
    ("alembic.util.exc", "CommandError"),
)


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """An exception class if its module is already imported (if not, it cannot have been raised)."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _is(exc: BaseException, module: str, name: str) -> bool:
    cls = _loaded(module, name)
    return cls is not None and isinstance(exc, cls)


def describe(exc: BaseException) -> str | None:
    """The one-line message for an error an operator can fix, or None for an unexpected one.

    Never the exception text of a database statement error (it may quote row values) nor a
    database URL (it may hold a password).
    """
    if any(_is(exc, module, name) for module, name in _EXPECTED):
        return str(exc)
    if _is(exc, "app.errors", "AppError"):
        return str(getattr(exc, "detail", exc))
    if _is(exc, "pydantic", "ValidationError"):
        return validation_message(exc)
    if _is(exc, "sqlalchemy.exc", "ArgumentError") or _is(exc, "sqlalchemy.exc", "NoSuchModuleError"):
        return "CASEBRIDGE_DATABASE_URL is not a database URL CaseBridge can use"
    if _is(exc, "sqlalchemy.exc", "OperationalError") or _is(exc, "sqlalchemy.exc", "InterfaceError"):
        reason = one_line(str(getattr(exc, "orig", "") or type(exc).__name__))
        return f"cannot use the database: {reason}"
    if _is(exc, "sqlalchemy.exc", "DBAPIError"):
        orig = getattr(exc, "orig", None)
        return f"database error ({type(orig or exc).__name__}); rerun with --debug for details"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or type(exc).__name__}"
    return None


def validation_message(exc: Any) -> str:
    """Where and what of the first validation error, without the rejected value."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "input"
    return f"{where}: {first['msg']}"


def debug_requested(ctx: typer.Context | None = None) -> bool:
    if ctx is not None and ctx.meta.get("casebridge.debug"):
        return True
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def exit_for(exc: Exception, *, debug: bool) -> typer.Exit:
    """Turn an exception into a one-line message and an exit code; a traceback only on --debug."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    message = describe(exc)
    if message is not None:
        return fail(message, ExitCode.ERROR)
    return fail(
        f"internal error ({type(exc).__name__}); rerun with --debug (or {DEBUG_ENV}=1) for the traceback",
        ExitCode.INTERNAL,
    )


class CaseBridgeGroup(TyperGroup):
    """The root command group: every command runs inside it, so every error passes through here."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):  # usage errors: typer's own
            raise
        except Exception as exc:
            raise exit_for(exc, debug=debug_requested(ctx)) from None
