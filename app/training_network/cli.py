"""casebridge training-network …: an isolated network of synthetic people for practice (docs/training.md)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_common import ExitCode, JsonFlag, emit_json, fail, out

training_network_cli = typer.Typer(
    help="Training networks: synthetic people and cases, isolated from every real network (docs/training.md).",
    no_args_is_help=True,
)


class Locale(StrEnum):
    ar = "ar"
    en = "en"
    mk = "mk"
    sq = "sq"


def _cli() -> Any:
    import app.cli as cli  # late: app.cli imports this module

    return cli


@training_network_cli.command("create")
def training_network_create(
    network_id: Annotated[str, typer.Option("--id", help="The network's id: 'training' or 'training-<name>'.")] = (
        "training"),
    locales: Annotated[list[Locale] | None, typer.Option(
        "--locale", help="A locale of its people (repeat it); default: all four, one set of people each.")] = None,
    people: Annotated[int, typer.Option(help="Synthetic people referred, one referral each, in every status "
                                             "in turn (at least 8).")] = 12,
    seed: Annotated[int, typer.Option(help="The same seed makes the same names, places and narratives.")] = 1,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="The policies folder the service loads (default: settings).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a training network: its network file and signed agreement in the policies folder, synthetic
    agencies, API clients and console people for each role, and referrals in every status with notes."""
    from app.training_network import create

    try:
        plan = create.Plan(network_id, tuple(loc.value for loc in locales or list(Locale)), people, seed)
    except create.TrainingNetworkInvalid as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    with _cli().service_state() as state:
        try:
            files, seeded = create.create(state, plan, state.clock().date(),
                                          directory or state.settings.policies_dir)
        except create.TrainingNetworkInvalid as exc:
            raise fail(str(exc)) from None
        clients_path, people_path = create.write_credentials(state, plan, seeded)
    files_text = [str(p) for p in files]
    result: dict[str, Any] = {"network": plan.network_id, "training": True, "files": files_text,
              "referrals": seeded.referrals, "clients": seeded.clients, "people": seeded.people,
              "credentials_files": [str(clients_path), str(people_path)]}
    if as_json:
        emit_json(result)
        return
    out.print(f"training network {plan.network_id}: {len(seeded.clients)} API clients, {len(seeded.people)} people, "
              f"{seeded.referrals} referrals; files {', '.join(files_text)}", highlight=False, soft_wrap=True)
    out.print(f"credentials written to {clients_path} and {people_path} (mode 0600)", highlight=False,
              soft_wrap=True)
