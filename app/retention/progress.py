"""Progress for long jobs: a rich bar on a terminal, a log line every tenth otherwise."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = logging.getLogger("casebridge.progress")


@contextmanager
def reporter(console: Console, label: str) -> Iterator[Callable[[int, int], None]]:
    """A callback(done, total) that shows progress the way the output can take it."""
    if console.is_terminal:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(label, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=max(total, done))

            yield update
        return
    logged = log_every_tenth(label)

    def note(done: int, total: int) -> None:
        line = logged(done, total)
        if line:
            console.print(line, highlight=False)

    yield note


def log_every_tenth(label: str) -> Callable[[int, int], str | None]:
    """A callback(done, total) logging a line at each tenth of the way; returns the line."""
    last_tenth = -1

    def note(done: int, total: int) -> str | None:
        nonlocal last_tenth
        tenth = 10 * done // total if total else 10
        if tenth == last_tenth and done != total:
            return None
        last_tenth = tenth
        line = f"{label}: {done}/{total}"
        log.info(line, extra={"done": done, "total": total})
        return line

    return note
