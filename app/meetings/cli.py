"""casebridge clocks …: the network clocks by hand (the service runs them on a schedule)."""

from __future__ import annotations

from typing import Any

import typer

from app.cli_common import JsonFlag, emit_json

clocks_cli = typer.Typer(help="The network clocks: overdue triage, assignment and actions, reviews, repeats.",
                         no_args_is_help=True)


def _cli() -> Any:
    import app.cli as cli  # late: app.cli imports this module

    return cli


@clocks_cli.command("run")
def run(as_json: JsonFlag = False) -> None:
    """Raise, once each, what every network's protocol says is due now (one process at a time).

    Each item raised becomes an entry of the coordinator's change feed (GET /v1/events).
    """
    from app.meetings import clocks

    cli = _cli()
    with cli.service_state() as state:
        try:
            report = clocks.run(state)
        except clocks.ClocksBusy as exc:
            raise cli.fail(str(exc)) from None
    if as_json:
        emit_json(report.as_dict())
        return
    raised = ", ".join(f"{kind} {count}" for kind, count in sorted(report.raised.items())) or "nothing new"
    cli.out.print(f"{report.networks} networks: {raised}.", highlight=False)
