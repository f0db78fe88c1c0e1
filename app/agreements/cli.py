"""casebridge policy …: validate, test, explain and report on agreements, offline."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from app.agencies.schemas import Role, Sector
from app.cli_common import ExitCode, JsonAlways, JsonFlag, comma_choices, err, out

if TYPE_CHECKING:
    from app.policy.duration import Duration
    from app.policy.loader import LoadResult
    from app.policy.model import Agreement, Network
    from app.policy.who import Recipient

policy_cli = typer.Typer(help="Information-sharing agreements (policies/).", no_args_is_help=True)

DirOption = Annotated[Path | None, typer.Option("--dir", help="Agreements folder (default: settings).")]
OnOption = Annotated[
    datetime | None, typer.Option("--on", formats=["%Y-%m-%d"], help="Evaluate as of this date (YYYY-MM-DD).")
]


class RopaFormat(StrEnum):
    markdown = "markdown"
    json = "json"


class RecordKind(StrEnum):
    referral = "referral"
    note = "note"
    statistics = "statistics"


class Relation(StrEnum):
    owner = "owner"
    referrer = "referrer"
    assigned = "assigned"


ROLES = ", ".join(Role)
RELATIONS = ", ".join(Relation)


def _load(directory: Path | None) -> tuple[Path, LoadResult]:
    from app.config import load_settings
    from app.policy.loader import load_agreements
    from app.referrals.schemas import referral_field_paths

    folder = directory or load_settings().policies_dir
    return folder, load_agreements(folder, referral_field_paths())


def _load_clean(directory: Path | None) -> tuple[Path, LoadResult]:
    """`_load`, or exit 1 after printing each file's error: tests and proofs need every agreement."""
    folder, result = _load(directory)
    if result.errors:
        for error in result.errors:
            err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR)
    return folder, result


def _day(on: datetime | None) -> date:
    return on.date() if on else date.today()


@policy_cli.command("check")
def policy_check(directory: DirOption = None, on: OnOption = None, as_json: JsonFlag = False) -> None:
    """Validate and lint every agreement; exit 1 on any error."""
    from app.policy.lint import check

    folder, result = _load(directory)
    findings = check(result, _day(on))
    if as_json:
        out.print_json(json.dumps([f.to_dict() for f in findings]))
    else:
        for finding in findings:
            colour = {"error": "red", "warning": "yellow"}.get(finding.level, "cyan")
            where = ":".join(x for x in (finding.agreement, finding.rule) if x)
            out.print(f"[{colour}]{finding.level}[/{colour}] {escape(where)} {escape(finding.message)}")
        for network in result.policy_set.networks.values():
            if network.source is not None:  # declared in a file: its protocol, defaults filled in
                out.print(f"network {escape(network.id)}: {escape(_protocol_line(network))}", soft_wrap=True)
        in_force = ", ".join(f"{a.id}@v{a.version}" for a in result.policy_set) or "none"
        out.print(f"{folder}: {len(result.policy_set)} agreement(s) loaded ({in_force}), "
                  f"{sum(f.level == 'error' for f in findings)} error(s)")
    if any(f.level == "error" for f in findings):
        raise typer.Exit(ExitCode.ERROR)


def _protocol_line(network: Network) -> str:
    protocol = network.protocol

    def by_urgency(deadlines: tuple[tuple[str, Duration], ...]) -> str:
        return ", ".join(f"{urgency} {d.iso()}" for urgency, d in deadlines)

    return (f"meets every {protocol.cadence.iso()}, chaired by {network.chair}; triage within "
            f"{by_urgency(protocol.triage_within)}; assignment within {by_urgency(protocol.assign_within)}; "
            f"reviews {', '.join(d.iso() for d in protocol.reviews_after_closure) or 'none'} after closure; "
            f"repeat referrals within {protocol.repeat_window.iso()}; actions "
            f"{'/'.join(protocol.action_statuses)}; re-assessed by {', '.join(protocol.reassessment_by)}")


@policy_cli.command("test")
def policy_test(
    directory: DirOption = None,
    tests: Annotated[Path | None, typer.Option(help="Test cases folder (default: <dir>/tests).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run the policy test cases next to the agreements and report rule coverage; exit 1 on a failure."""
    from app.policy.policy_tests import run_policy_tests

    folder, result = _load_clean(directory)
    report = run_policy_tests(result.policy_set, tests or folder / "tests")
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        for failure in report.failed:
            out.print(f"[red]FAIL[/red] {escape(str(failure))}")
        for agreement, rules in report.coverage.items():
            covered = sum(1 for n in rules.values() if n)
            out.print(f"{agreement}: {covered}/{len(rules)} rules covered")
        for agreement, rule_ids in report.uncovered.items():
            out.print(f"[yellow]uncovered[/yellow] {agreement}: {', '.join(rule_ids)}")
        out.print(f"{report.passed} passed, {len(report.failed)} failed")
    if not report.ok:
        raise typer.Exit(ExitCode.ERROR)


@policy_cli.command(
    "who-can",
    epilog="--view lists the rules granting it; --field (or --view with --exact) answers from the exact analysis"
    " of every caller, purpose and record class. An unknown view or field is a usage error (exit 2).",
)
def policy_who_can(
    view: Annotated[str | None, typer.Option(help="View name, e.g. referral.summary.")] = None,
    field: Annotated[
        str | None, typer.Option(help="Field, e.g. subject.ethnicity, notes.health, statistics.district.")
    ] = None,
    purpose: Annotated[str | None, typer.Option(help="Purpose id (needed with --view without --exact).")] = None,
    exact: Annotated[bool, typer.Option("--exact", help="Answer --view from the exact analysis.")] = False,
    network: Annotated[str | None, typer.Option(help="Only agreements deciding this network.")] = None,
    directory: DirOption = None,
    on: OnOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Who can receive a view or a field: the rules granting a view, or every audience class exactly."""
    from app.policy.who import UnknownName, receivers, who_can

    if (view is None) == (field is None):
        raise typer.BadParameter("give exactly one of --view and --field")
    _, result = _load(directory)
    day = _day(on)
    if view is not None and not exact:
        if purpose is None:
            raise typer.BadParameter("--view needs --purpose (or --exact)")
        if not any(view in a.views for a in result.policy_set if a.in_force(day)):
            raise typer.BadParameter(f"unknown view {view!r}: no agreement in force defines it", param_hint="--view")
        _print_recipients(who_can(result.policy_set, view, purpose, day, network), view, purpose, as_json)
        return
    try:
        found = receivers(result.policy_set, day, field=field, view=view, purpose=purpose, network=network)
    except UnknownName as exc:
        raise typer.BadParameter(str(exc), param_hint="--field" if field else "--view") from None
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in found]))
        return
    what = field or view or ""
    if not found:
        out.print(f"nobody receives {escape(what)}")
    for r in found:
        rules = ", ".join(r.rule_ids)
        out.print(f"{escape(str(r.caller))} — {escape(r.purpose)} via {escape(', '.join(r.views))} "
                  f"(rules {escape(rules)}; {r.records} record class(es), e.g. {escape(str(r.record))})",
                  soft_wrap=True)


def _print_recipients(recipients: list[Recipient], view: str, purpose: str, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in recipients]))
        return
    if not recipients:
        out.print(f"nobody receives {escape(view)} for {escape(purpose)}")
    for r in recipients:
        audience = "; ".join(
            f"{label}={','.join(values)}"
            for label, values in (("agencies", r.agencies), ("sectors", r.sectors), ("roles", r.roles),
                                  ("relations", r.relations))
            if values
        )
        conditions = " ".join(f"{k}∈{{{','.join(v)}}}" for k, v in r.conditions.items())
        caveat = f" (may be cancelled by {', '.join(r.restricted_by)})" if r.restricted_by else ""
        networks = f"[{','.join(r.networks)}] " if r.networks else ""
        out.print(f"{escape(networks)}{r.agreement_id}/{r.rule_id} → {r.granted_view}: "
                  f"{escape(audience)} {escape(conditions)}{caveat}")


@policy_cli.command(
    "prove",
    epilog="Exit 0 when every assertion holds, 1 when one fails (with a counterexample) or a file cannot be read.",
)
def policy_prove(
    directory: Annotated[Path | None, typer.Argument(help="Agreements folder (default: settings).")] = None,
    tests: Annotated[Path | None, typer.Option(help="Policy-test folder (default: <dir>/tests).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the `assertions:` of the policy-test files over every caller, purpose and record, exactly."""
    from app.policy.prove import prove

    folder, result = _load_clean(directory)
    report = prove(result.policy_set, tests or folder / "tests")
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        for problem in report.problems:
            out.print(f"[red]error[/red] {escape(problem)}", soft_wrap=True)
        for r in report.results:
            mark = "[green]holds[/green]" if r.ok else "[red]FAILS[/red]"
            out.print(f"{mark} {escape(r.agreement)}: {escape(r.name)}", soft_wrap=True)
            if r.counterexample is not None:
                out.print(f"  counterexample: {escape(str(r.counterexample))}", soft_wrap=True)
        classes = sum(s["classes"] for s in report.spaces)
        out.print(f"{sum(r.ok for r in report.results)} of {len(report.results)} assertion(s) hold "
                  f"over {classes} class(es)")
    if not report.ok:
        raise typer.Exit(ExitCode.ERROR)


@policy_cli.command("diff", epilog="Exit 0 with or without changes; 1 when a file cannot be read.")
def policy_diff(
    old: Annotated[Path, typer.Argument(help="The agreement file as it was.")],
    new: Annotated[Path, typer.Argument(help="The agreement file as proposed.")],
    as_json: JsonFlag = False,
) -> None:
    """What the new version newly grants and newly withholds, by caller, purpose and record class."""
    from app.policy.diff import diff_agreements

    before, after = _agreement_file(old), _agreement_file(new)
    found = diff_agreements(before, after)
    if as_json:
        out.print_json(json.dumps(found.to_dict()))
    else:
        typer.echo(found.to_markdown(), nl=False)


def _agreement_file(path: Path) -> Agreement:
    from app.policy.loader import parse_agreement

    try:
        content = path.read_bytes()
    except OSError as exc:
        err.print(f"error: {escape(str(path))}: {escape(exc.strerror or 'cannot be read')}", highlight=False,
                  soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR) from None
    parsed = parse_agreement(content, str(path))
    if parsed.agreement is None:
        for error in parsed.errors:
            err.print(f"error: {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR)
    return parsed.agreement


@policy_cli.command("ropa")
def policy_ropa(
    directory: DirOption = None,
    fmt: Annotated[RopaFormat, typer.Option("--format", help="Output format.")] = RopaFormat.markdown,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """The record of processing activities (GDPR Art. 30), generated from the agreements."""
    from app.policy.ropa import ropa, ropa_markdown

    _, result = _load(directory)
    if as_json or fmt is RopaFormat.json:
        out.print_json(json.dumps(ropa(result.policy_set), default=str))
    else:
        typer.echo(ropa_markdown(result.policy_set))


@policy_cli.command("status")
def policy_status(as_json: JsonFlag = False) -> None:
    """Every agreement version this deployment loaded: proposed, in force or superseded; who signed, who has not."""
    from sqlalchemy import select

    from app.agreements.models import AgreementVersion
    from app.agreements.signing import versions
    from app.cli import print_rows, unit_of_work

    with unit_of_work() as (session, state):
        ids = session.scalars(select(AgreementVersion.agreement_id).distinct().order_by(AgreementVersion.agreement_id))
        rows = [{
            "agreement": v.row.agreement_id, "version": v.row.version, "state": v.row.state,
            "content_hash": v.row.content_hash, "signed_by": sorted({s.agency_id for s in v.signatures
                                                                     if s.content_hash == v.row.content_hash}),
            "missing": list(v.missing),
        } for agreement_id in list(ids) for v in versions(session, state, agreement_id)]
    print_rows(rows, ["agreement", "version", "state", "signed_by", "missing"], as_json, "Agreement versions")


@policy_cli.command("explain", epilog="Exit 0 when permitted, 3 when denied; the JSON says why.")
def policy_explain(
    agency: Annotated[str, typer.Option(help="Caller's agency id.")],
    sector: Annotated[Sector, typer.Option(help="Caller's sector.")],
    roles: Annotated[str, typer.Option(callback=comma_choices(Role), help=f"Comma-separated roles: {ROLES}.")],
    purpose: Annotated[str, typer.Option(help="Stated purpose.")],
    record: Annotated[
        list[str], typer.Option(callback=_key_values,
                                help="Record attribute key=value (repeatable); concerns=a,b for several;"
                                     " invited=true|false (default false).")
    ] = [],  # noqa: B006
    relations: Annotated[
        str, typer.Option(callback=comma_choices(Relation), help=f"Comma-separated relations: {RELATIONS}.")
    ] = "",
    kind: Annotated[RecordKind, typer.Option(help="The kind of record.")] = RecordKind.referral,
    view: Annotated[str | None, typer.Option(help="A named view to ask for.")] = None,
    training: Annotated[
        str, typer.Option(help="Comma-separated courses the caller holds, current (agreements' `requires`).")
    ] = "",
    directory: DirOption = None,
    on: OnOption = None,
    as_json: JsonAlways = False,
) -> None:
    """May a caller like this see a record like this for this purpose, and if not, why not (JSON)."""
    from app.access import lapse_explained
    from app.policy.decision import AttributeValue, Caller, described_record
    from app.policy.explain import explain
    from app.policy.vocabulary import MANY_VALUED

    # `concerns=a,b`: the set of a many-valued attribute's values.
    attributes: dict[str, AttributeValue] = {
        key: frozenset(value.split(",")) if key in MANY_VALUED else value
        for key, value in (item.split("=", 1) for item in record)
    }
    _, result = _load(directory)
    # A described record is of the agency's (first) network unless it names another, as in the API.
    mine = result.policy_set.networks_of(agency)
    if "network" not in attributes and mine:
        attributes["network"] = mine[0]
    caller = Caller("cli", agency, sector.value, _split(roles), _split(relations), _split(training))
    described = described_record(kind.value, attributes)
    explanation = explain(result.policy_set, caller, purpose, described, view, now=_day(on))
    explanation = lapse_explained(result.policy_set, agency, described, explanation)
    out.print_json(json.dumps(explanation.to_dict(), default=str))
    if not explanation.decision.permit:
        raise typer.Exit(ExitCode.DENIED)


def _key_values(items: list[str]) -> list[str]:
    """--record takes key=value: anything else is a usage error (exit 2)."""
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"takes key=value, not {item!r}")
        key, value = item.split("=", 1)
        if key == "invited" and value not in ("true", "false"):
            raise typer.BadParameter(f"invited is true or false, not {value!r}")
    return items


def _split(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())
