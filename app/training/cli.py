"""casebridge training …: load completions from a CSV file, list a person's records (docs/cli.md)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_common import JsonFlag, emit_json

training_cli = typer.Typer(help="Training records: the courses people completed (agreements' `requires`).",
                           no_args_is_help=True)
COLUMNS = ("person_id", "course_id", "completed_on", "expires_on")
OPTIONAL = ("recorded_by", "agency_id")
PERSON = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
COURSE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # the agreements' slug pattern


@dataclass(frozen=True, slots=True)
class Row:
    person_id: str
    course_id: str
    completed_on: date
    expires_on: date | None
    recorded_by: str
    agency_id: str | None  # needed for a person the service does not know
    line: int


def _cli() -> Any:
    import app.cli as cli  # late: app.cli imports this module

    return cli


def _date(text: str, column: str, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        problems.append(f"{column} {text!r} is not a date (YYYY-MM-DD)")
        return None


def parse(path: Path, today: date) -> tuple[list[Row], list[str]]:
    """Every row of the file, or every line's problems (then nothing is to be imported)."""
    from app.training.service import check_dates

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot be read ({exc.__class__.__name__})"]
    reader = csv.DictReader(text.splitlines())
    header = tuple(reader.fieldnames or ())
    if header[:4] != COLUMNS or not set(header[4:]) <= set(OPTIONAL):
        return [], [f"line 1: the columns must be {','.join(COLUMNS)}[,recorded_by][,agency_id],"
                    f" not {','.join(header)}"]
    rows, errors = [], []
    for record in reader:
        line = reader.line_num
        problems: list[str] = []
        person, course = (record.get("person_id") or "").strip(), (record.get("course_id") or "").strip()
        if None in record or any(value is None for value in record.values()):
            problems.append("wrong number of columns")
        if not PERSON.fullmatch(person):
            problems.append(f"person_id {person!r} is not a person or client id")
        if not COURSE.fullmatch(course):
            problems.append(f"course_id {course!r} is not a course id (lower-case letters, digits, - and _)")
        completed = _date(record.get("completed_on") or "", "completed_on", problems)
        expires_text = (record.get("expires_on") or "").strip()
        expires = _date(expires_text, "expires_on", problems) if expires_text else None
        recorded_by = (record.get("recorded_by") or "").strip() or "import"
        if not PERSON.fullmatch(recorded_by):
            problems.append(f"recorded_by {recorded_by!r} is not a person or client id")
        agency = (record.get("agency_id") or "").strip() or None
        if agency is not None and not COURSE.fullmatch(agency):
            problems.append(f"agency_id {agency!r} is not an agency id")
        if completed is not None and (problem := check_dates(completed, expires, today)):
            problems.append(problem)
        if problems or completed is None:
            errors.append(f"line {line}: {'; '.join(problems)}")
        else:
            rows.append(Row(person, course, completed, expires, recorded_by, agency, line))
    return rows, errors


@training_cli.command("import", epilog="Exit 0 when every row was imported; 1 when any row is bad (none imported).")
def training_import(
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="person_id,course_id,completed_on,expires_on"
                                                                   "[,recorded_by][,agency_id]; expires_on empty: no"
                                                                   " expiry; agency_id: for a person unknown here.")],
    as_json: JsonFlag = False,
) -> None:
    """Import course completions; the whole file is checked first, and a bad row imports nothing."""
    from rich.markup import escape

    from app.errors import BadRequest
    from app.training.service import add, person_agency, recorded_event

    cli = _cli()
    with cli.unit_of_work() as (session, state):
        now = state.clock()
        rows, errors = parse(file, now.date())
        agencies: list[str] = []
        for row in rows if not errors else ():
            try:  # the agency the record counts for: the person's, or the one the row names for a stranger
                agencies.append(person_agency(session, row.person_id, row.agency_id))
            except BadRequest as exc:
                errors.append(f"line {row.line}: {exc.detail}")
        if errors:
            for error in errors:  # the file's values, so no markup in them
                cli.err.print(f"[red]error:[/red] {escape(f'{file.name} {error}')}", highlight=False, soft_wrap=True,
                              markup=True)
            if as_json:
                emit_json({"imported": 0, "errors": errors})
            raise typer.Exit(1)
        for row, agency in zip(rows, agencies, strict=True):
            made = add(session, person_id=row.person_id, agency_id=agency, course_id=row.course_id,
                       completed_on=row.completed_on, expires_on=row.expires_on, recorded_by=row.recorded_by,
                       source="import", now=now)
            state.audit.append(session, recorded_event(None, made, agency, None), now=now)
    if as_json:
        emit_json({"imported": len(rows), "errors": []})
    else:
        cli.out.print(f"imported {len(rows)} training record(s) from {file.name}", highlight=False)


@training_cli.command("list")
def training_list(
    person: Annotated[str, typer.Option("--person", help="The person (or API client) whose records to list.")],
    as_json: JsonFlag = False,
) -> None:
    """A person's records, newest completion first, and whether each still counts today."""
    from sqlalchemy import select

    from app.training.held import Completion, latest
    from app.training.models import TrainingRecord

    cli = _cli()
    with cli.unit_of_work() as (session, state):
        today = state.clock().date()
        found = list(session.scalars(select(TrainingRecord).where(TrainingRecord.person_id == person)
                                     .order_by(TrainingRecord.completed_on.desc(), TrainingRecord.recorded_at.desc())))
        completions = {r.id: Completion(r.course_id, r.completed_on, r.expires_on, r.recorded_at) for r in found}
        # The one that counts, per agency the records were made under (a record of none counts for nobody).
        counted = {agency: latest(completions[r.id] for r in found if r.agency_id == agency)
                   for agency in {r.agency_id for r in found}}
        rows = [{"id": r.id, "agency_id": r.agency_id, "course_id": r.course_id,
                 "completed_on": r.completed_on.isoformat(),
                 "expires_on": r.expires_on.isoformat() if r.expires_on else None, "recorded_by": r.recorded_by,
                 "source": r.source, "counts": r.agency_id is not None and
                 counted[r.agency_id][r.course_id] == completions[r.id] and completions[r.id].held(today)}
                for r in found]
    cli.print_rows(rows, ["id", "agency_id", "course_id", "completed_on", "expires_on", "recorded_by", "source",
                          "counts"],
                   as_json, f"Training of {person}")
