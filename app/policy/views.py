"""Resolve an agreement's view definitions (with `include` composition) into Views."""

from collections.abc import Mapping

from app.policy.documents import (
    ComposedViewDocument,
    NotesViewDocument,
    StatisticsSettings,
    StatisticsViewDocument,
    ViewDocument,
)
from app.policy.fields import (
    ALL_DIMENSIONS,
    SPECIAL_CATEGORY_CLASSIFICATIONS,
    SPECIAL_CATEGORY_DIMENSIONS,
    SPECIAL_CATEGORY_FIELDS,
    expand_field,
)
from app.policy.issues import Issue, did_you_mean
from app.policy.model import View, view_kind
from app.policy.yaml_nodes import Path

_SHAPES = {
    "referral": "a field list or {include: [...], fields: [...], exclude: [...]}",
    "note": "{notes: {classification: [...]}}",
    "statistics": "{aggregate: [...], min_cell: N}",
}


class ViewResolver:
    """Resolves views on demand, reporting unknown fields and include cycles once."""

    def __init__(
        self,
        documents: Mapping[str, ViewDocument],
        known_fields: frozenset[str],
        settings: StatisticsSettings,
        allowed_dimensions: frozenset[str],
    ) -> None:
        self._documents = documents
        self._known = known_fields
        self._settings = settings
        self._dimensions = allowed_dimensions
        self.views: dict[str, View] = {}
        self.broken: set[str] = set()
        self.issues: list[Issue] = []
        self._visiting: list[str] = []

    def resolve_all(self) -> dict[str, View]:
        for name in self._documents:
            self.resolve(name, ("views", name))
        return self.views

    def resolve(self, name: str, at: Path) -> View | None:
        if name in self.views:
            return self.views[name]
        if name in self.broken:
            return None
        if name in self._visiting:
            cycle = " -> ".join(self._visiting[self._visiting.index(name) :] + [name])
            self.issues.append(Issue(at, f"view include cycle: {cycle}"))
            return None
        self._visiting.append(name)
        try:
            view = self._build(name, self._documents[name])
        finally:
            self._visiting.pop()
        if view is None:
            self.broken.add(name)
        else:
            self.views[name] = view
        return view

    def _build(self, name: str, document: ViewDocument) -> View | None:
        kind = view_kind(name)
        at: Path = ("views", name)
        if kind == "referral" and isinstance(document, list):
            return self._referral(name, ComposedViewDocument(fields=document), at, bare=True)
        if kind == "referral" and isinstance(document, ComposedViewDocument):
            return self._referral(name, document, at, bare=False)
        if kind == "note" and isinstance(document, NotesViewDocument):
            classes = frozenset(document.notes.classification)
            return View(name, kind, classes, classes & SPECIAL_CATEGORY_CLASSIFICATIONS)
        if kind == "statistics" and isinstance(document, StatisticsViewDocument):
            return self._statistics(name, document, at)
        self.issues.append(Issue(at, f"view {name} must be {_SHAPES[kind]}"))
        return None

    def _fields(self, patterns: list[str], at: Path) -> frozenset[str] | None:
        found: set[str] = set()
        ok = True
        for index, pattern in enumerate(patterns):
            expanded = expand_field(pattern, self._known)
            if not expanded:
                hint = did_you_mean(pattern, self._known)
                self.issues.append(Issue(at + (index,), f"unknown field {pattern!r}{hint}"))
                ok = False
            found |= expanded
        return frozenset(found) if ok else None

    def _referral(
        self, name: str, document: ComposedViewDocument, at: Path, *, bare: bool
    ) -> View | None:
        items: set[str] = set()
        ok = True
        for index, included in enumerate(document.include):
            where = at + ("include", index)
            if included not in self._documents:
                hint = did_you_mean(included, set(self._documents))
                self.issues.append(
                    Issue(where, f"view {name} includes unknown view {included!r}{hint}")
                )
                ok = False
            elif view_kind(included) != "referral":
                self.issues.append(Issue(where, f"view {name} can only include referral views"))
                ok = False
            else:
                view = self.resolve(included, where)
                ok = ok and view is not None
                items |= view.items if view else set()
        added = self._fields(document.fields, at if bare else at + ("fields",))
        removed = self._fields(document.exclude, at + ("exclude",))
        if added is None or removed is None or not ok:
            return None
        items |= added
        for index, field in enumerate(document.exclude):
            if not expand_field(field, self._known) & items:
                self.issues.append(
                    Issue(
                        at + ("exclude", index),
                        f"view {name} excludes {field!r}, which it does not include",
                        "warning",
                    )
                )
        granted = frozenset(items - removed)
        if not granted:
            self.issues.append(Issue(at, f"view {name} grants no fields"))
            return None
        return View(name, "referral", granted, granted & SPECIAL_CATEGORY_FIELDS)

    def _statistics(self, name: str, document: StatisticsViewDocument, at: Path) -> View | None:
        ok = True
        for index, dimension in enumerate(document.aggregate):
            where = at + ("aggregate", index)
            if dimension not in ALL_DIMENSIONS:
                hint = did_you_mean(dimension, ALL_DIMENSIONS)
                self.issues.append(
                    Issue(where, f"unknown statistics dimension {dimension!r}{hint}")
                )
                ok = False
            elif dimension not in self._dimensions:
                allowed = ", ".join(sorted(self._dimensions))
                self.issues.append(
                    Issue(
                        where,
                        f"dimension {dimension!r} not allowed by statistics.dimensions ({allowed})",
                    )
                )
                ok = False
        floor = self._settings.min_cell
        min_cell = document.min_cell if document.min_cell is not None else floor
        if min_cell < floor:
            self.issues.append(
                Issue(
                    at + ("min_cell",),
                    f"min_cell {min_cell} is below the agreement's floor {floor}",
                )
            )
            ok = False
        if not ok:
            return None
        dimensions = frozenset(document.aggregate)
        return View(
            name, "statistics", dimensions, dimensions & SPECIAL_CATEGORY_DIMENSIONS, min_cell
        )
