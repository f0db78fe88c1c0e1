"""A tally of the schemathesis run, printed in the test summary (the numbers the issue asks for)."""

from __future__ import annotations

from typing import Any

import pytest

TALLY: dict[str, Any] = {"operations": set(), "cases": 0, "stateful_steps": 0}


@pytest.fixture
def schemathesis_tally() -> dict[str, Any]:
    return TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY["cases"] or TALLY["stateful_steps"]:
        failed = len(terminalreporter.stats.get("failed", []))
        terminalreporter.write_line(
            f"schemathesis: {len(TALLY['operations'])} operations, {TALLY['cases']} generated cases, "
            f"{TALLY['stateful_steps']} stateful calls, {failed} failed tests"
        )
