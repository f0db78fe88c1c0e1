"""Forms built from the API's published JSON Schemas: the same rules, and the same words, in the browser and here.

A page asks the API for a schema (``GET /v1/schemas/{name}/{version}``), and :func:`build` turns its
properties into fields: an ``enum`` (with its ``x-vocabulary``) becomes a pick-list labelled in the
person's language, a list of codes a multiple choice, a boolean a check box, an object a fieldset.
Each field carries the schema's constraints as HTML attributes (``required``, ``maxlength``,
``pattern``, ``min``/``max``) and the translated message for each in ``data-msg-*``
(app/console/static/console.js shows them); :func:`Form.read` checks a submitted form with the very
same rules and messages before the page posts anything, and :func:`Form.body` is the JSON document
the API is sent. What the API still refuses (422) goes back beside the fields with
:func:`Form.api_errors`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from app.console import web
from app.console.web import N_, Visit

MSG_REQUIRED = N_("%(field)s is required.")
MSG_PATTERN = N_("%(field)s is not in the expected form.")
MSG_MAXLENGTH = N_("%(field)s is too long: at most %(max)s characters.")
MSG_RANGE = N_("%(field)s must be between %(min)s and %(max)s.")
MSG_CHOICE = N_("Choose %(field)s from the list.")
MSG_TOO_MANY = N_("Choose at most %(max)s for %(field)s.")
MSG_NUMBER = N_("%(field)s must be a number.")

TEXTAREA_FROM = 1000
"""Text longer than this (``maxLength``) gets a text area."""


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str


@dataclass(slots=True)
class Field:
    """One input: where it goes in the document (``path``), how it is shown, and its rules."""

    path: str
    label: str
    help: str
    kind: str  # text, email, textarea, select, multi, checkbox, number
    required: bool = False
    conditional: bool = False  # required only when its object is given at all
    max_length: int | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_items: int | None = None
    integer: bool = False
    options: list[Option] = field(default_factory=list)
    value: Any = None
    error: str | None = None
    error_from_api: bool = False  # the service's own words (English), not the catalogs'
    messages: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return "f-" + self.path.replace(".", "-")

    @property
    def name(self) -> str:
        return self.path

    def has_value(self) -> bool:
        return self.value not in (None, "", [], False)


@dataclass(slots=True)
class Section:
    """An object of the schema: a fieldset of its fields and objects, with its if/then/else rule."""

    path: str
    label: str
    help: str
    required: bool
    items: list[Field | Section] = field(default_factory=list)
    array: bool = False  # one item of a list of objects (path ends in ".0")
    when: dict[str, Any] | None = None  # the schema's if/then/else, as given

    @property
    def is_section(self) -> bool:
        return True

    def fields(self) -> list[Field]:
        found: list[Field] = []
        for item in self.items:
            found.extend(item.fields() if isinstance(item, Section) else [item])
        return found


@dataclass(slots=True)
class Form:
    """A schema's form: its top section, fixed values (``const``), and the errors not tied to a field."""

    root: Section
    fixed: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    def fields(self) -> list[Field]:
        return self.root.fields()

    def field(self, path: str) -> Field | None:
        return next((f for f in self.fields() if f.path == path), None)

    @property
    def errors(self) -> list[Field]:
        return [f for f in self.fields() if f.error]

    def read(self, visit: Visit, submitted: Any) -> bool:
        """Take the submitted values and check them with the schema's rules; True when all pass."""
        for item in self.fields():
            if item.kind == "multi":
                item.value = [str(v) for v in submitted.getlist(item.path)]
            elif item.kind == "checkbox":
                item.value = submitted.get(item.path) in ("on", "true", "1")
            else:
                raw = submitted.get(item.path)
                item.value = str(raw).replace("\r\n", "\n") if isinstance(raw, str) else ""
            item.error = None
        _check_section(visit, self.root, given=True)
        return not self.errors

    def body(self) -> dict[str, Any]:
        """The JSON document: what was given, empty optional parts left out, fixed values in."""
        document = _section_value(self.root, top=True) or {}
        return {**self.fixed, **document}

    def api_errors(self, visit: Visit, reply: web.Reply) -> None:
        """The API's ``errors[]`` (its paths) beside the fields they name; the rest above the form."""
        body = reply.body if isinstance(reply.body, dict) else {}
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        placed = False
        for error in errors or []:
            if not isinstance(error, dict):
                continue
            path = _field_path(str(error.get("path", "")))
            message = str(error.get("message") or error.get("detail") or "")
            target = self.field(path) or next((f for f in self.fields() if f.path.startswith(path + ".")), None)
            if target is not None and path:
                target.error, target.error_from_api = message, True
                placed = True
            else:
                self.problems.append(f"{path}: {message}" if path else message)
        if not placed and not self.problems:
            self.problems.append(reply.problem() or visit.gettext(N_("Some of what you entered was not accepted.")))


    def refused(self, visit: Visit, reply: web.Reply, key: str) -> tuple[int, str]:
        """The API refused the post: its reasons on the form; the status to answer and the key to offer next.

        A refused post keeps its Idempotency-Key only if nothing was stored under it: a 409 is a key used
        before, so the form gets a new one.
        """
        if reply.status == 422:
            self.api_errors(visit, reply)
        else:
            heading, explanation = web.PROBLEM_TEXT.get(reply.status, web.UNAVAILABLE)
            self.problems.append(f"{visit.gettext(heading)}: {visit.gettext(explanation)} {reply.problem()}".strip())
        status = reply.status if 400 <= reply.status < 500 else 502
        return status, secrets.token_urlsafe(24) if reply.status == 409 else key


def _field_path(json_path: str) -> str:
    """``$.subject.identifiers[0].system`` -> ``subject.identifiers.0.system``."""
    path = json_path.removeprefix("$").lstrip(".")
    return re.sub(r"\[(\d+)\]", r".\1", path).strip(".")


# Building ---------------------------------------------------------------------------------------


def variant(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema's variant for standard codes (the first of ``anyOf`` without ``code_system``)."""
    variants = document.get("anyOf")
    if isinstance(variants, list):
        for option in variants:
            if isinstance(option, dict) and "code_system" not in option.get("properties", {}):
                return option
        if variants and isinstance(variants[0], dict):
            return dict(variants[0])
    return document


def build(visit: Visit, document: Mapping[str, Any], *, labels: Mapping[str, str], helps: Mapping[str, str],
          skip: frozenset[str] = frozenset(), choices: Mapping[str, list[str]] | None = None,
          defaults: Mapping[str, Any] | None = None) -> Form:
    """The form of a published schema: ``labels``/``helps`` (N_ strings, by path) name and explain each field;
    ``skip`` leaves paths out (the API fills them), ``choices`` narrows a field's options."""
    schema = variant(document)
    fixed = {name: prop["const"] for name, prop in schema.get("properties", {}).items()
             if isinstance(prop, dict) and "const" in prop}
    builder = _Builder(visit, labels, helps, skip | frozenset(fixed), choices or {}, defaults or {})
    root = builder.section("", schema, required=True, conditional=False)
    return Form(root, fixed)


class _Builder:
    def __init__(self, visit: Visit, labels: Mapping[str, str], helps: Mapping[str, str], skip: frozenset[str],
                 choices: Mapping[str, list[str]], defaults: Mapping[str, Any]) -> None:
        self.visit, self.labels, self.helps, self.skip = visit, labels, helps, skip
        self.choices, self.defaults = choices, defaults

    def label(self, path: str, schema: Mapping[str, Any]) -> str:
        if path in self.labels:
            return self.visit.gettext(self.labels[path])
        if path in web.FIELD_LABELS:
            return web.field_label(self.visit, path)
        return str(schema.get("title") or path.rsplit(".", 1)[-1])

    def help(self, path: str) -> str:
        return self.visit.gettext(self.helps[path]) if path in self.helps else ""

    def section(self, path: str, schema: Mapping[str, Any], *, required: bool, conditional: bool,
                array: bool = False) -> Section:
        label_path = path.removesuffix(".0") if array else path
        section = Section(path, self.label(label_path, schema) if path else "", self.help(label_path) if path else "",
                          required, array=array,
                          when={k: schema[k] for k in ("if", "then", "else") if k in schema} or None)
        needed = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            child = f"{path}.{name}" if path else name
            if child in self.skip or not isinstance(prop, dict) or "const" in prop:
                continue
            item = self.item(child, prop, required=name in needed,
                             conditional=conditional or (not required) or array)
            if item is not None:
                section.items.append(item)
        return section

    def item(self, path: str, schema: Mapping[str, Any], *, required: bool,
             conditional: bool) -> Field | Section | None:
        kinds = _types(schema)
        if "object" in kinds and "properties" in schema:
            return self.section(path, schema, required=required, conditional=conditional)
        if "array" in kinds:
            items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
            assert isinstance(items, dict)
            if "object" in _types(items) and "properties" in items:
                return self.section(f"{path}.0", items, required=False, conditional=True, array=True)
            codes = _enum(items)
            if not codes:
                return None
            made = self.field(path, schema, "multi", required=required and int(schema.get("minItems", 0)) > 0,
                              conditional=conditional)
            made.options = self.options(path, {"x-vocabulary": schema.get("x-vocabulary"), **items}, codes)
            made.max_items = schema.get("maxItems")
            made.value = []
            return made
        codes = _enum(schema)
        if codes:
            made = self.field(path, schema, "select", required=required, conditional=conditional)
            made.options = self.options(path, schema, codes)
            default = self.defaults.get(path, schema.get("default"))
            if default is None and required and len(made.options) == 1:
                default = made.options[0].value
            made.value = default if isinstance(default, str) else ""
            return made
        if "boolean" in kinds:
            made = self.field(path, schema, "checkbox", required=False, conditional=conditional)
            made.value = bool(self.defaults.get(path, schema.get("default")))
            return made
        if kinds & {"integer", "number"}:
            made = self.field(path, schema, "number", required=required, conditional=conditional)
            made.integer = "integer" in kinds
            made.minimum, made.maximum = schema.get("minimum"), schema.get("maximum")
            return made
        if "string" in kinds:
            length = schema.get("maxLength")
            kind = "email" if schema.get("format") == "email" else \
                "textarea" if isinstance(length, int) and length > TEXTAREA_FROM else "text"
            made = self.field(path, schema, kind, required=required, conditional=conditional)
            made.max_length = length if isinstance(length, int) else None
            made.pattern = schema.get("pattern") if isinstance(schema.get("pattern"), str) else None
            made.value = str(self.defaults.get(path, ""))
            return made
        return None

    def field(self, path: str, schema: Mapping[str, Any], kind: str, *, required: bool, conditional: bool) -> Field:
        label = self.label(path, schema)
        made = Field(path, label, self.help(path), kind, required=required, conditional=required and conditional)
        gettext = self.visit.gettext
        made.messages = {
            "required": gettext(MSG_REQUIRED) % {"field": label},
            "pattern": gettext(MSG_PATTERN) % {"field": label},
            "maxlength": gettext(MSG_MAXLENGTH) % {"field": label, "max": schema.get("maxLength", "")},
            "range": gettext(MSG_RANGE) % {"field": label, "min": schema.get("minimum", ""),
                                           "max": schema.get("maximum", "")},
            "choice": gettext(MSG_CHOICE) % {"field": label},
            "too_many": gettext(MSG_TOO_MANY) % {"field": label, "max": schema.get("maxItems", "")},
            "number": gettext(MSG_NUMBER) % {"field": label},
        }
        return made

    def options(self, path: str, schema: Mapping[str, Any], codes: list[str]) -> list[Option]:
        allowed = self.choices.get(path)
        vocabulary = schema.get("x-vocabulary")
        shown = [c for c in codes if allowed is None or c in allowed]
        return [Option(code, web.code_label(self.visit, str(vocabulary), code) if vocabulary else code)
                for code in shown]


def _types(schema: Mapping[str, Any]) -> set[str]:
    given = schema.get("type")
    if isinstance(given, str):
        return {given}
    if isinstance(given, list):
        return {str(t) for t in given}
    found: set[str] = set()
    for option in schema.get("anyOf", []) or []:
        if isinstance(option, dict):
            found |= _types(option)
            if "enum" in option:
                found.add("string")
    return found


def _enum(schema: Mapping[str, Any]) -> list[str]:
    """The codes of an ``enum`` (also inside ``anyOf``), without the ``null`` an optional one allows."""
    if isinstance(schema.get("enum"), list):
        return [str(c) for c in schema["enum"] if c is not None]
    for option in schema.get("anyOf", []) or []:
        if isinstance(option, dict) and isinstance(option.get("enum"), list):
            return [str(c) for c in option["enum"] if c is not None]
    return []


# Checking ---------------------------------------------------------------------------------------


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _given(section: Section) -> bool:
    return any(f.has_value() for f in section.fields() if f.kind != "checkbox")


def _check_section(visit: Visit, section: Section, *, given: bool) -> None:
    # An optional object left empty is left out; once any of it is given, its required fields are needed.
    present = given and (section.required or _given(section))
    for item in section.items:
        if isinstance(item, Section):
            _check_section(visit, item, given=present)
        else:
            _check_field(item, needed=present and item.required)
    if present and section.when:
        _check_condition(section)


def _check_condition(section: Section) -> None:
    """The schema's if/then/else on an object (e.g. consent: a legal basis unless consent is given)."""
    when = section.when or {}
    condition = when.get("if") if isinstance(when.get("if"), dict) else {}
    assert isinstance(condition, dict)
    values = {item.path.rsplit(".", 1)[-1]: item for item in section.items if isinstance(item, Field)}
    matched = True
    for name in condition.get("required", []):
        if name not in values or not values[name].has_value():
            matched = False
    for name, rule in (condition.get("properties") or {}).items():
        item = values.get(name)
        value = item.value if item is not None else None
        if isinstance(rule, dict) and "enum" in rule and value not in rule["enum"]:
            matched = False
        if isinstance(rule, dict) and "const" in rule and value != rule["const"]:
            matched = False
    branch = when.get("then" if matched else "else")
    for name in (branch or {}).get("required", []) if isinstance(branch, dict) else []:
        item = values.get(name)
        if item is not None and not item.has_value() and item.error is None:
            item.error = item.messages["required"]


def _check_field(item: Field, *, needed: bool) -> None:
    value = item.value
    if item.kind == "checkbox":
        return
    if item.kind == "multi":
        assert isinstance(value, list)
        if not value:
            if needed:
                item.error = item.messages["required"]
            return
        if any(v not in {o.value for o in item.options} for v in value):
            item.error = item.messages["choice"]
        elif item.max_items is not None and len(set(value)) > item.max_items:
            item.error = item.messages["too_many"]
        return
    if value in ("", None):
        if needed:
            item.error = item.messages["required"]
        return
    assert isinstance(value, str)
    if item.kind == "select":
        if value not in {o.value for o in item.options}:
            item.error = item.messages["choice"]
        return
    if item.kind == "number":
        try:
            number = int(value) if item.integer else float(value)
        except ValueError:
            item.error = item.messages["number"]
            return
        if (item.minimum is not None and number < item.minimum) or (item.maximum is not None and number > item.maximum):
            item.error = item.messages["range"]
        return
    if item.max_length is not None and len(value) > item.max_length:
        item.error = item.messages["maxlength"]
        return
    compiled = _compiled(item.pattern) if item.pattern else None
    if compiled is not None and compiled.fullmatch(value) is None:
        item.error = item.messages["pattern"]


# The document -----------------------------------------------------------------------------------


def _field_value(item: Field) -> Any:
    if item.kind == "multi":
        return list(dict.fromkeys(item.value or [])) or None
    if item.kind == "checkbox":
        return True if item.value else None
    if item.value in ("", None):
        return None
    if item.kind == "number":
        return int(item.value) if item.integer else float(item.value)
    return item.value


def _section_value(section: Section, *, top: bool = False) -> dict[str, Any] | None:
    if not top and not section.required and not _given(section):
        return None
    document: dict[str, Any] = {}
    for item in section.items:
        if isinstance(item, Section):
            name = item.path.removesuffix(".0").rsplit(".", 1)[-1] if item.array else item.path.rsplit(".", 1)[-1]
            value = _section_value(item)
            if value is not None:
                document[name] = [value] if item.array else value
        else:
            found = _field_value(item)
            if found is not None:
                document[item.path.rsplit(".", 1)[-1]] = found
    return document
