"""Months, the quarters they roll up into, and windows of whole periods."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

from app.statistics.tables import Value

__all__ = ["Period", "in_window", "month_of", "quarter_of", "starts_period"]

Period = Literal["month", "quarter"]
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def month_of(when: datetime) -> str:
    return f"{when.year}-{when.month:02d}"


def quarter_of(month: Value) -> Value:
    """The quarter a month (``2025-04``) falls in (``2025-Q2``): the period dimension's rollup."""
    found = _MONTH.match(str(month))
    if found is None:
        raise ValueError(f"a period must be a month like 2025-04, got {month!r}")
    return f"{found[1]}-Q{(int(found[2]) - 1) // 3 + 1}"


def starts_period(day: date, period: Period) -> bool:
    """Whether ``day`` is the first day of a month (or of a quarter)."""
    return day.day == 1 and (period == "month" or day.month % 3 == 1)


def start_of(value: Value) -> date:
    """The first day of a month (``2025-04``) or quarter (``2025-Q2``)."""
    text = str(value)
    if found := _MONTH.match(text):
        return date(int(found[1]), int(found[2]), 1)
    if found := _QUARTER.match(text):
        return date(int(found[1]), 3 * int(found[2]) - 2, 1)
    raise ValueError(f"not a period: {value!r}")


def in_window(since: date | None, until: date | None) -> Callable[[Value], bool]:
    """Whether a period (month or quarter) starts on or after ``since`` and before ``until``."""

    def inside(value: Value) -> bool:
        start = start_of(value)
        return (since is None or since <= start) and (until is None or start < until)

    return inside
