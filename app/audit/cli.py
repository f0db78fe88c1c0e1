"""casebridge audit …: verify the log (live or offline), sign a checkpoint, export."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from app.audit import auditor, export, live, offline
from app.audit.checkpoints import sign_if_grown, verifier_lines
from app.audit.verify import Report
from app.config import ConfigError, load_settings
from app.crypto.keyring import KeyringError
from app.db import transaction
from app.errors import AppError
from app.state import AppState

audit_cli = typer.Typer(
    help="The disclosure log: verify, checkpoint, export.", no_args_is_help=True
)
err = Console(stderr=True)

ExportOption = Annotated[
    Path | None,
    typer.Option(
        "--export",
        exists=True,
        dir_okay=False,
        help="Verify this JSON-lines export "
        "offline (needs --checkpoint and --key; no database, no keyring).",
    ),
]
CheckpointOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--checkpoint",
        exists=True,
        dir_okay=False,
        help="A signed checkpoint saved earlier; the log must match it (repeatable).",
    ),
]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        exists=True,
        dir_okay=False,
        help="Trusted verifier keys, one per line (live default: the keyring's).",
    ),
]
OriginOption = Annotated[
    str | None, typer.Option("--origin", help="Expected checkpoint origin (offline).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _service() -> Iterator[AppState]:
    from app.bootstrap import build_state

    try:
        state = build_state(load_settings())
    except (ConfigError, KeyringError) as exc:
        raise _fail(str(exc)) from None
    try:
        yield state
    finally:
        state.engine.dispose()


def _print_report(report: Report, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    if report.problem is not None:
        raise _fail(f"verification FAILED at {report.problem}")
    if as_json:
        return
    signers = sorted({k for c in report.checkpoints for k in c.signed_by})
    unsigned = report.entries - report.signed_size
    sys.stdout.write(
        f"ok: {report.entries} entries verified in {report.seconds:.3f} s "
        f"({report.entries_per_second:,.0f} entries/s)\n"
        f"root: {report.root.hex()}\n"
        f"checkpoints: {len(report.checkpoints)} matched; largest signed tree size "
        f"{report.signed_size}"
        + (f" ({unsigned} newer entries chained but not yet signed)" if unsigned else "")
        + "\n"
        + "".join(f"signed by: {key}\n" for key in signers)
    )


@audit_cli.command("verify")
def verify(
    export_file: ExportOption = None,
    checkpoint: CheckpointOption = None,
    key: KeyOption = None,
    origin: OriginOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute every leaf, the prev-hash chain and the tree; check signed checkpoints.

    Exits 1 naming the first bad sequence number and what is wrong.
    """
    files = checkpoint or []
    if export_file is not None:
        if not files or key is None:
            raise _fail("offline verification needs --checkpoint FILE and --key FILE", 2)
        report = offline.verify_export(export_file, files, key, origin=origin)
        _print_report(report, as_json)
        return
    with _service() as state:
        notes = [(str(path), path.read_text()) for path in files]
        keys = offline.read_keys(key) if key is not None else None
        report = live.verify_database(
            state.sessions, state.audit.signer, extra_notes=notes, keys=keys
        )
    _print_report(report, as_json)


@audit_cli.command("checkpoint")
def checkpoint_now() -> None:
    """Sign a checkpoint now if the log grew, and print the latest one."""
    with _service() as state, transaction(state.sessions) as session:
        stored = sign_if_grown(session.connection(), state.audit.signer)
    sys.stdout.write(stored.note)


@audit_cli.command("verifier-key")
def verifier_key() -> None:
    """Print the checkpoint verifier keys (active first), for offline verification."""
    with _service() as state:
        sys.stdout.write(verifier_lines(state.audit.signer.verifier_keys()))


@audit_cli.command("export")
def export_log(
    output: Annotated[Path, typer.Option("--output", dir_okay=False, help="Write here.")],
    format: Annotated[Literal["jsonl", "fhir"], typer.Option(help="jsonl or fhir.")] = "jsonl",
    decrypt: Annotated[bool, typer.Option(help="Include decrypted details.")] = False,
) -> None:
    """Export the log (the export is itself logged); JSON lines verify offline."""
    with _service() as state:
        try:
            with transaction(state.sessions) as session:
                size = auditor.start_export(
                    session, state.audit, auditor.CLI_ASKER, format=format, decrypt=decrypt
                )
        except AppError as exc:
            raise _fail(exc.detail) from None
        rows = export.iter_rows(state.sessions, size)
        sealer = state.audit.sealer
        if format == "fhir":
            chunks = export.fhir_bundle(rows, sealer, state.audit.origin, decrypt=decrypt)
        else:
            chunks = export.jsonl_lines(rows, sealer if decrypt else None)
        with output.open("wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
    err.print(f"exported {size} entries to {output}", highlight=False, soft_wrap=True)
