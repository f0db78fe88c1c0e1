"""casebridge audit …: verify the log (live or offline), sign a checkpoint, export."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli_common import ExitCode, JsonFlag, emit_json, err, fail

if TYPE_CHECKING:
    from app.audit.verify import Report
    from app.state import AppState

audit_cli = typer.Typer(
    help="The disclosure log: verify, checkpoint, export.", no_args_is_help=True
)


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    fhir = "fhir"

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


@contextmanager
def _service() -> Iterator[AppState]:
    from app.bootstrap import build_state
    from app.config import load_settings

    state = build_state(load_settings())
    try:
        yield state
    finally:
        state.engine.dispose()


def _print_report(report: Report, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
    if report.problem is not None:
        raise fail(f"verification FAILED at {report.problem}")
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
    from app.audit import live, offline

    files = checkpoint or []
    if export_file is not None:
        if not files or key is None:
            raise fail("offline verification needs --checkpoint FILE and --key FILE", ExitCode.USAGE)
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
def checkpoint_now(as_json: JsonFlag = False) -> None:
    """Sign a checkpoint now if the log grew, and print the latest one (the signed note)."""
    from app.audit.checkpoints import sign_if_grown
    from app.db import transaction

    with _service() as state, transaction(state.sessions) as session:
        stored = sign_if_grown(session.connection(), state.audit.signer)
    if as_json:
        emit_json({"note": stored.note})
    else:
        sys.stdout.write(stored.note)


@audit_cli.command("verifier-key")
def verifier_key(as_json: JsonFlag = False) -> None:
    """Print the checkpoint verifier keys (active first), for offline verification."""
    from app.audit.checkpoints import verifier_lines

    with _service() as state:
        lines = verifier_lines(state.audit.signer.verifier_keys())
    if as_json:
        emit_json({"keys": lines.splitlines()})
    else:
        sys.stdout.write(lines)


@audit_cli.command("export")
def export_log(
    output: Annotated[Path, typer.Option("--output", dir_okay=False, help="Write here.")],
    format: Annotated[ExportFormat, typer.Option(help="JSON lines or a FHIR Bundle.")] = ExportFormat.jsonl,
    decrypt: Annotated[bool, typer.Option(help="Include decrypted details.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Export the log (the export is itself logged); JSON lines verify offline."""
    from app.audit import auditor, export
    from app.db import transaction

    with _service() as state:
        with transaction(state.sessions) as session:
            size = auditor.start_export(
                session, state.audit, auditor.CLI_ASKER, format=format.value, decrypt=decrypt
            )
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
    if as_json:
        emit_json({"status": "ok", "entries": size, "output": str(output), "format": format.value})
