"""The published shape of a statistics table, and the dimensions it may have."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DIMENSIONS",
    "MAX_DIMENSIONS",
    "MULTI_VALUED",
    "Cell",
    "Margin",
    "StatisticsTable",
    "Value",
    "Why",
    "check_dimensions",
]

DIMENSIONS = ("concerns", "district", "age_band", "risk_level", "status", "outcome", "period")
# A referral names one or more concerns (the referral schema requires at least one).
MULTI_VALUED = frozenset({"concerns"})
MAX_DIMENSIONS = 3

Value = str | int | None
Why = Literal["primary", "secondary"]


@dataclass(frozen=True, slots=True)
class Cell:
    """One published number, or its place when suppressed; ``why`` is never published."""

    values: Mapping[str, Value]
    count: int | None
    why: Why | None = None

    @property
    def suppressed(self) -> bool:
        return self.why is not None

    def to_json(self) -> dict[str, Value | bool]:
        body: dict[str, Value | bool] = dict(self.values)
        body["count"] = self.count
        if self.suppressed:
            body["suppressed"] = True
        return body


@dataclass(frozen=True, slots=True)
class Margin:
    """A lower-dimensional marginal table; no dimensions is the grand total."""

    dimensions: tuple[str, ...]
    cells: tuple[Cell, ...]

    def to_json(self) -> dict[str, object]:
        return {"dimensions": list(self.dimensions), "cells": [c.to_json() for c in self.cells]}


@dataclass(frozen=True, slots=True)
class StatisticsTable:
    """A protected frequency table: its cells and every margin, grand total last."""

    dimensions: tuple[str, ...]
    min_cell: int
    protection: int
    cells: tuple[Cell, ...]
    margins: tuple[Margin, ...]

    @property
    def total(self) -> Cell:
        return self.margins[-1].cells[0]

    def to_json(self) -> dict[str, object]:
        return {
            "dimensions": list(self.dimensions),
            "min_cell": self.min_cell,
            "cells": [c.to_json() for c in self.cells],
            "margins": [m.to_json() for m in self.margins],
        }


def check_dimensions(dimensions: Sequence[str]) -> tuple[str, ...]:
    """The requested dimensions, or ValueError naming what is wrong with them."""
    dims = tuple(dimensions)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; choose from {list(DIMENSIONS)}")
    if not 1 <= len(dims) <= MAX_DIMENSIONS:
        raise ValueError(f"ask for 1 to {MAX_DIMENSIONS} dimensions, not {len(dims)}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dimensions repeat: {list(dims)}")
    return dims
