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
OPTIONAL = ("recorded_by",)
PERSON = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
COURSE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # the agreements' slug pattern


@dataclass(frozen=True, slots=True)
class Row:
    person_id: str
    course_id: str
    completed_on: date
    expires_on: date | None
    recorded_by: str


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
        return [], [f"line 1: the columns must be {','.join(COLUMNS)}[,recorded_by], not {','.join(header)}"]
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
        if completed is not None and (problem := check_dates(completed, expires, today)):
            problems.append(problem)
        if problems or completed is None:
            errors.append(f"line {line}: {'; '.join(problems)}")
        else:
            rows.append(Row(person, course, completed, expires, recorded_by))
    return rows, errors


@training_cli.command("import", epilog="Exit 0 when every row was imported; 1 when any row is bad (none imported).")
def training_import(
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="person_id,course_id,completed_on,expires_on"
                                                                   "[,recorded_by]; expires_on empty: no expiry.")],
    as_json: JsonFlag = False,
) -> None:
    """Import course completions; the whole file is checked first, and a bad row imports nothing."""
    from app.training.service import add, recorded_event

    cli = _cli()
    with cli.unit_of_work() as (session, state):
        now = state.clock()
        rows, errors = parse(file, now.date())
        if errors:
            for error in errors:
                cli.err.print(f"[red]error:[/red] {file.name} {error}", highlight=False, soft_wrap=True, markup=True)
            if as_json:
                emit_json({"imported": 0, "errors": errors})
            raise typer.Exit(1)
        for row in rows:
            made = add(session, person_id=row.person_id, course_id=row.course_id, completed_on=row.completed_on,
                       expires_on=row.expires_on, recorded_by=row.recorded_by, source="import", now=now)
            state.audit.append(session, recorded_event(None, made, _agency(session, row.person_id), None), now=now)
    if as_json:
        emit_json({"imported": len(rows), "errors": []})
    else:
        cli.out.print(f"imported {len(rows)} training record(s) from {file.name}", highlight=False)


def _agency(session: Any, person_id: str) -> Any:
    from app.training.service import agency_of

    return agency_of(session, person_id)


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
        counted = latest(completions.values())
        rows = [{"id": r.id, "course_id": r.course_id, "completed_on": r.completed_on.isoformat(),
                 "expires_on": r.expires_on.isoformat() if r.expires_on else None, "recorded_by": r.recorded_by,
                 "source": r.source, "counts": counted[r.course_id] == completions[r.id] and
                 completions[r.id].held(today)} for r in found]
    cli.print_rows(rows, ["id", "course_id", "completed_on", "expires_on", "recorded_by", "source", "counts"],
                   as_json, f"Training of {person}")
