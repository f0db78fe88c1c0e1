"""A problem found while building an agreement, located by its path in the document."""

from dataclasses import dataclass
from typing import Literal

from app.policy.yaml_nodes import Path


@dataclass(frozen=True, slots=True)
class Issue:
    path: Path
    reason: str
    level: Literal["error", "warning"] = "error"


def did_you_mean(name: str, choices: frozenset[str] | set[str] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
