"""Project a nested record onto the field paths a decision grants (subject.given_name …)."""

from collections.abc import Iterable, Mapping
from typing import Any


def project(document: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Keep only the granted dotted paths; absent paths stay absent."""
    result: dict[str, Any] = {}
    for path in sorted(fields):
        *parents, leaf = path.split(".")
        source: Any = document
        target = result
        for part in parents:
            if not isinstance(source, Mapping) or part not in source:
                break
            source = source[part]
            target = target.setdefault(part, {})
        else:
            if isinstance(source, Mapping) and leaf in source:
                target[leaf] = source[leaf]
    return result
