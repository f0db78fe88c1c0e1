"""ISO 8601 durations and retention obligations."""

from datetime import date, datetime

import pytest

from app.policy import Duration, parse_duration, parse_retention


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("P6Y", Duration(years=6)),
        ("P90D", Duration(days=90)),
        ("PT3H", Duration(hours=3)),
        ("P1Y2M3W4DT5H6M7S", Duration(1, 2, 3, 4, 5, 6, 7)),
    ],
)
def test_parse_duration_round_trips(text: str, duration: Duration) -> None:
    assert parse_duration(text) == duration
    assert duration.iso() == text


@pytest.mark.parametrize("text", ["", "P", "PT", "6Y", "P6", "P1.5Y", "PT3D", "P-1D"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_retention_anchor() -> None:
    assert parse_retention("P6Y after closed").anchor == "closed"
    assert parse_retention("P90D").anchor == "disclosure"
    assert str(parse_retention("P6Y after closed")) == "P6Y after closed"


def test_add_to_clamps_month_ends() -> None:
    assert Duration(months=1).add_to(date(2026, 1, 31)) == date(2026, 2, 28)
    assert Duration(years=6).add_to(date(2024, 2, 29)) == date(2030, 2, 28)
    assert Duration(hours=3).add_to(datetime(2026, 1, 1, 22)) == datetime(2026, 1, 2, 1)
