"""casebridge keys rotate KIND: the command over app.crypto.rotation."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from app.cli_common import JsonFlag, emit_json
from app.crypto.keyring import KeyKind


def _cli() -> Any:
    import app.cli as cli  # late: app.cli imports this module

    return cli


def rotate(
    kind: Annotated[KeyKind, typer.Argument(help="The kind of key to rotate.")],
    resume: Annotated[
        bool, typer.Option("--resume", help="Add no key; finish moving data to the active one.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a new active key (old ones stay for reading); kek re-wraps, blind_index re-indexes."""
    from app.crypto.keyring import KeyringError
    from app.crypto.rotation import RotationError
    from app.crypto.rotation import rotate as do_rotate
    from app.retention.progress import reporter

    cli = _cli()
    label = {
        KeyKind.kek: "re-wrapping data keys",
        KeyKind.blind_index: "re-indexing identifiers",
    }.get(kind, kind)
    with cli.service_state() as state, reporter(cli.err, str(label)) as progress:
        try:
            report = do_rotate(state, kind, resume=resume, progress=progress)
        except (RotationError, KeyringError) as exc:
            raise cli.fail(str(exc)) from None
    if as_json:
        emit_json(report.as_dict())
    else:
        verb = (
            "finished" if report.resumed else f"rotated {kind.value}: {report.previous_key_id} ->"
        )
        cli.out.print(f"{verb} {report.key_id}", highlight=False)
        if kind in (KeyKind.kek, KeyKind.blind_index):
            cli.out.print(
                f"{report.moved} moved, {len(report.failed)} failed, {report.remaining} remaining",
                highlight=False,
            )
    if report.failed or report.remaining:
        raise cli.fail(
            f"{len(report.failed)} subjects could not be moved and {report.remaining} remain; "
            f"run `casebridge keys rotate {kind.value} --resume` again"
        )
