"""ISO 8601 durations and retention obligations such as `P6Y after closed`."""

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, TypeVar

RetentionAnchor = Literal["disclosure", "closed"]

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
DURATION_PATTERN = _DURATION.pattern
RETENTION_PATTERN = DURATION_PATTERN[:-1] + r"(?: after closed)?$"

_When = TypeVar("_When", date, datetime)


@dataclass(frozen=True, slots=True)
class Duration:
    """A calendar-aware ISO 8601 duration (no fractions)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    def iso(self) -> str:
        date_part = "".join(
            f"{n}{unit}"
            for n, unit in (
                (self.years, "Y"),
                (self.months, "M"),
                (self.weeks, "W"),
                (self.days, "D"),
            )
            if n
        )
        time_part = "".join(
            f"{n}{unit}"
            for n, unit in ((self.hours, "H"), (self.minutes, "M"), (self.seconds, "S"))
            if n
        )
        text = "P" + date_part + (f"T{time_part}" if time_part else "")
        return text if text != "P" else "PT0S"

    @property
    def is_zero(self) -> bool:
        return not any(
            (self.years, self.months, self.weeks, self.days, self.hours, self.minutes, self.seconds)
        )

    def add_to(self, when: _When) -> _When:
        """`when` plus this duration; months and years clamp to the month's last day."""
        month_index = when.month - 1 + self.months + 12 * self.years
        year, month = when.year + month_index // 12, month_index % 12 + 1
        day = min(when.day, calendar.monthrange(year, month)[1])
        shifted = when.replace(year=year, month=month, day=day)
        delta = timedelta(
            weeks=self.weeks,
            days=self.days,
            hours=self.hours,
            minutes=self.minutes,
            seconds=self.seconds,
        )
        if isinstance(shifted, datetime):
            return shifted + delta
        return shifted + timedelta(days=delta.days)

    def __str__(self) -> str:
        return self.iso()


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a recipient may keep what it received, counted from `anchor`."""

    duration: Duration
    anchor: RetentionAnchor = "disclosure"

    def __str__(self) -> str:
        return self.duration.iso() + (" after closed" if self.anchor == "closed" else "")


def parse_duration(text: str) -> Duration:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"bad duration {text!r}: expected ISO 8601 such as P6Y, P90D or PT3H")
    parts = {name: int(value) for name, value in match.groupdict().items() if value}
    return Duration(**parts)


def parse_retention(text: str) -> Retention:
    words = text.split()
    if len(words) == 3 and words[1:] == ["after", "closed"]:
        anchor: RetentionAnchor = "closed"
    elif len(words) == 1:
        anchor = "disclosure"
    else:
        raise ValueError(
            f"bad retention {text!r}: expected an ISO 8601 duration such as P90D,"
            " optionally followed by 'after closed' (e.g. 'P6Y after closed')"
        )
    try:
        duration = parse_duration(words[0])
    except ValueError as exc:
        raise ValueError(
            f"bad retention {text!r}: {words[0]!r} is not an ISO 8601 duration such as P6Y or P90D"
        ) from exc
    if duration.is_zero:
        raise ValueError(f"bad retention {text!r}: a retention period must be longer than zero")
    return Retention(duration, anchor)
