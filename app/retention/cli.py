"""casebridge retention …, backup and restore: commands call services, never HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_common import JsonFlag, YesFlag, confirm, emit_json

retention_cli = typer.Typer(
    help="Retention: purge what expired, re-apply erasures after a restore.", no_args_is_help=True
)
SHOWN = 50  # rows of the table; --json lists everything


def _cli() -> Any:
    import app.cli as cli  # late: app.cli imports this module

    return cli


@retention_cli.command("run", epilog="Without --dry-run: exit 4 if not confirmed (--yes); nothing is changed then.")
def run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; change nothing.")
    ] = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Erase what passed its retention date and is not on legal hold (one process at a time).

    Irreversible, so it asks first (or takes --yes); the service itself runs it on a schedule.
    """
    from app.retention import purge
    from app.retention.progress import reporter

    cli = _cli()
    if not dry_run:
        confirm("erase now everything past its retention date (this cannot be undone)", yes=yes)
    with cli.service_state() as state, reporter(cli.err, "purging") as progress:
        try:
            report = purge.run(state, dry_run=dry_run, progress=progress)
        except purge.PurgeBusy as exc:
            raise cli.fail(str(exc)) from None
    if as_json:
        emit_json(report.as_dict())
        return
    rows = [
        {
            "subject": p.target.subject_id,
            "referrals": list(p.target.referral_ids),
            "action": "erase person" if p.target.whole else "delete referrals",
            "retain_until": p.retain_until.isoformat() if p.retain_until else "-",
        }
        for p in report.planned[:SHOWN]
    ]
    title = "Would purge" if dry_run else "Purged"
    cli.print_rows(rows, ["subject", "referrals", "action", "retain_until"], False, title)
    if len(report.planned) > SHOWN:
        cli.out.print(
            f"… and {len(report.planned) - SHOWN} more (--json lists all)", highlight=False
        )
    for referral_id, hold_ids in sorted(report.held.items()):
        cli.out.print(f"held: {referral_id} ({', '.join(hold_ids)})", highlight=False)
    if not dry_run:
        cli.out.print(
            f"{report.subjects} people and {report.referrals} referrals "
            f"({report.notes} notes) purged; "
            f"{report.finished} interrupted erasures finished; {len(report.held)} held.",
            highlight=False,
        )


@retention_cli.command("recompute")
def recompute(as_json: JsonFlag = False) -> None:
    """Recompute every retention date under the agreements in force now (e.g. after a change)."""
    from sqlalchemy import select

    from app.db import transaction
    from app.referrals.models import Referral
    from app.retention.dates import apply
    from app.retention.purge import rules_for

    cli = _cli()
    count = 0
    with cli.service_state() as state:
        rules, now, after = rules_for(state), state.clock(), ""
        while True:
            with transaction(state.sessions) as session:
                rows = list(
                    session.scalars(
                        select(Referral)
                        .where(Referral.id > after)
                        .order_by(Referral.id)
                        .limit(state.settings.retention_batch_size)
                    )
                )
                for referral in rows:
                    apply(session, rules, referral, now)
            count += len(rows)
            if len(rows) < state.settings.retention_batch_size:
                break
            after = rows[-1].id
    if as_json:
        emit_json({"status": "ok", "recomputed": count})
    else:
        cli.out.print(f"recomputed {count} retention dates")


@retention_cli.command("reapply")
def reapply_command(as_json: JsonFlag = False) -> None:
    """Apply again every erasure and purge in the erasure ledger the database has not seen."""
    from app.retention.reapply import reapply

    cli = _cli()
    with cli.service_state() as state:
        report = reapply(state)
    _print_reapply(report.as_dict(), as_json)


def _print_reapply(report: dict[str, int], as_json: bool) -> None:
    cli = _cli()
    if as_json:
        emit_json(report)
        return
    cli.out.print(
        f"erasure ledger read from byte {report['from_offset']} to {report['to_offset']} "
        f"({report['entries']} entries): {report['subjects']} people and "
        f"{report['referrals']} referrals "
        f"erased again, {report['tombstones']} tombstones restored",
        highlight=False,
    )


def backup(
    path: Annotated[Path, typer.Argument(help="Where to write the backup (never overwritten).")],
    as_json: JsonFlag = False,
) -> None:
    """Write a consistent copy of the database (SQLite); for PostgreSQL, say how (pg_dump)."""
    from app.config import ConfigError, load_settings
    from app.retention.backup import BackupError, backup_sqlite, postgres_instructions, sqlite_path

    cli = _cli()
    try:
        settings = load_settings()
        database = sqlite_path(settings.resolved_database_url)
        if database is None:
            text, installed = postgres_instructions(
                settings.resolved_database_url, path, restore=False
            )
            if as_json:
                emit_json({"status": "instructions", "instructions": text, "tool_installed": installed})
            else:
                cli.out.print(text, highlight=False, soft_wrap=True)
            if not installed:
                raise cli.fail("pg_dump is not installed on this machine")
            return
        backup_sqlite(database, path)
    except (ConfigError, BackupError) as exc:
        raise cli.fail(str(exc)) from None
    if as_json:
        emit_json({"status": "ok", "database": str(database), "backup": str(path)})
    else:
        cli.out.print(f"backed up {database} to {path} (mode 0600)", highlight=False)
    cli.err.print(
        "The backup holds sealed data only; keep the keyring and the erasure ledger apart from it."
    )


def restore(
    path: Annotated[Path, typer.Argument(help="The backup to restore.")],
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup over the database (stop the service first), then re-apply later erasures.

    Destructive: everything written since the backup is lost, so it asks first (or takes --yes).
    For PostgreSQL it only prints the pg_restore command.
    """
    from app.config import ConfigError, load_settings
    from app.retention.backup import (
        BackupError,
        check_backup,
        postgres_instructions,
        restore_sqlite,
        sqlite_path,
    )
    from app.retention.reapply import reapply

    cli = _cli()
    try:
        settings = load_settings()
        database = sqlite_path(settings.resolved_database_url)
        if database is None:
            text, installed = postgres_instructions(
                settings.resolved_database_url, path, restore=True
            )
            if as_json:
                emit_json({"status": "instructions", "instructions": text, "tool_installed": installed})
            else:
                cli.out.print(text, highlight=False, soft_wrap=True)
            if not installed:
                raise cli.fail("pg_restore is not installed on this machine")
            return
        check_backup(path)  # a file that is no backup is refused before anyone is asked
        confirm(f"replace the database {database} with the backup {path} (later changes are lost)", yes=yes)
        restore_sqlite(path, database)
    except (ConfigError, BackupError) as exc:
        raise cli.fail(str(exc)) from None
    from app import migrate

    with cli.service_state(migrate_now=False) as state:
        migrate.upgrade(state.engine)  # a backup from an older release is brought to this one
        report = reapply(state)
    if as_json:
        emit_json({"status": "ok", "restored": str(path), "database": str(database), **report.as_dict()})
        return
    cli.out.print(f"restored {path} to {database}", highlight=False)
    _print_reapply(report.as_dict(), as_json)
