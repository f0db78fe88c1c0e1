"""A registry entry as the JSON Schema partners validate and generate bodies with: exactly what the API takes.

The model's own schema (pydantic) carries the types, lengths and patterns the API checks. This
module adds what lives outside the model: the vocabulary codes as `oneOf` of `const`s titled with
their labels, `uniqueItems` on code lists, the legal-basis conditional, this year's birth-date
pattern, and the server-side rules (`x-server-side`). Codes are standard unless the body names a
`code_system`: the document is then an `anyOf` of one variant per code system. A referrer that
asks with its token gets its own networks and code systems spelled out; anyone else gets a
variant in which an agency's codes are any code, for the server to check against its mapping.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.standards import formats
from app.standards.registry import Path, SchemaVersion
from app.vocabularies.catalog import vocabularies

BASE_URL = "https://casebridge.example/schemas"
Tables = Mapping[str, Mapping[str, str]]  # vocabulary -> the agency's code -> the standard code
# Fields that carry a server-side rule, and the rule's id (app/referrals/schemas.py, SERVER_SIDE_RULES).
_FIELD_RULES: dict[Path, str] = {
    ("subject", "date_of_birth"): "date_of_birth_not_in_future",
    ("code_system",): "code_system_of_your_agency",
    ("network",): "network_of_your_agency",
    ("subject", "identifiers"): "identity_link",
}


@dataclass(frozen=True, slots=True)
class Audience:
    """Whom the document is for: None fields mean "any agency" (the server checks them)."""

    networks: tuple[str, ...] | None = None
    code_systems: Mapping[str, Tables] | None = None


ANYONE = Audience()


def document(version: SchemaVersion, audience: Audience = ANYONE, today: date | None = None) -> dict[str, Any]:
    """The published JSON Schema (Draft 2020-12) of one registry entry, for one audience."""
    base = _inline(version.model.model_json_schema(by_alias=True))
    _fill_birth_dates(base, today or date.today())
    _mark_server_side(base, version)
    variants = [_standard(version, base)]
    if version.code_systems:
        if audience.code_systems is None:
            variants.append(_any_code_system(version, base))
        else:
            own = audience.code_systems
            variants += [_code_system(version, base, cs, own[cs]) for cs in sorted(own)]
    if audience.networks and "network" in base.get("properties", {}):
        for variant in variants:
            variant["properties"]["network"] = {
                "anyOf": [{"enum": list(audience.networks)}, {"type": "null"}],
                "description": base["properties"]["network"].get("description", ""),
            }
    meta: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URL}/{version.name}/{version.version}",
        "title": version.id,
        "description": version.summary,
        "x-server-side": [{"rule": rule, "description": text} for rule, text in version.server_side.items()],
    }
    if len(variants) == 1:
        return {**meta, **variants[0], "title": version.id, "description": version.summary}
    return {**meta, "anyOf": variants}


# -- building blocks ---------------------------------------------------------------------------


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every local `$ref` replaced by its definition (each variant is changed on its own)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**resolve(copy.deepcopy(definitions[ref.removeprefix("#/$defs/")])), **rest}
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = _flatten_nullable(resolve(schema))
    return resolved


def _flatten_nullable(node: Any) -> Any:
    """`anyOf: [X, null]` (pydantic's optional) as `type: [X's type, "null"]`: the same set, simpler to generate."""
    if isinstance(node, list):
        return [_flatten_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _flatten_nullable(v) for k, v in node.items()}
    branches = node.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        (inner,) = [b for b in branches if b != {"type": "null"}]
        if isinstance(inner.get("type"), str) and not {"anyOf", "oneOf", "allOf", "enum", "const"} & set(inner):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return {**inner, **rest, "type": [inner["type"], "null"]}
    return node


def _fill_birth_dates(node: Any, today: date) -> None:
    if isinstance(node, dict):
        if node.pop("x-birth-date", False):
            # This year's bound; no `format` beside it, so generators draw from the pattern itself.
            node["pattern"] = formats.birth_date_pattern(today)
            node.pop("format", None)
        for value in node.values():
            _fill_birth_dates(value, today)
    elif isinstance(node, list):
        for value in node:
            _fill_birth_dates(value, today)


def _mark_server_side(base: dict[str, Any], version: SchemaVersion) -> None:
    for path, rule in _FIELD_RULES.items():
        if rule in version.server_side:
            node = _find(base, path)
            if node is not None:
                node["x-server-side"] = [rule]


def _object(node: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional value (a node whose type lists "null" is its own)."""
    for branch in node.get("anyOf", []):
        if branch.get("type") != "null":
            return _object(branch)
    return node


def _nullable(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return isinstance(kind, list) and "null" in kind


def _find(root: dict[str, Any], path: Path) -> dict[str, Any] | None:
    node: dict[str, Any] | None = root
    for part in path:
        if node is None:
            return None
        inner = _object(node)
        node = inner.get("items") if part == "[]" else inner.get("properties", {}).get(part)
    return node


def _set_codes(root: dict[str, Any], path: Path, options: Sequence[tuple[str, str]]) -> None:
    """The field at `path` takes exactly these codes (a list of them: each once)."""
    node = _find(root, path)
    if node is None:
        return
    target = _object(node)
    if target.get("type") == "array":
        target["uniqueItems"] = True
        target = _object(target["items"])
    for key in ("pattern", "minLength", "maxLength"):
        target.pop(key, None)
    nullable = _nullable(target)
    target["type"] = ["string", "null"] if nullable else "string"
    target["enum"] = [code for code, _ in options] + ([None] if nullable else [])
    # The labels, in enum order (openapi-generator and doc tools read x-enum-descriptions).
    target["x-enum-descriptions"] = [title for _, title in options] + (["(none)"] if nullable else [])


def _unique_lists(root: dict[str, Any], version: SchemaVersion) -> None:
    for path in version.coded:
        node = _find(root, path)
        if node is not None and _object(node).get("type") in ("array", ["array", "null"]):
            _object(node)["uniqueItems"] = True


def _standard_options(vocabulary: str) -> list[tuple[str, str]]:
    entry = vocabularies()[vocabulary]
    return [(c.code, entry.label(c.code)) for c in entry.codes]


def _legal_basis_rule(root: dict[str, Any], version: SchemaVersion, given: Sequence[str]) -> None:
    """consent.legal_basis is required unless consent.status is (a code for) `given`."""
    if version.consent is None:
        return
    node = _find(root, version.consent)
    if node is not None:
        require_legal_basis(_object(node), given)


def require_legal_basis(consent: dict[str, Any], given: Sequence[str]) -> None:
    """On a consent object's schema: `legal_basis` is required unless `status` is one of `given`."""
    consent.update({
        "if": {"properties": {"status": {"enum": list(given)}}, "required": ["status"]},
        "then": {},
        "else": {"required": ["legal_basis"], "properties": {"legal_basis": {"type": "string"}}},
    })


def standard_codes(schema: dict[str, Any], field: str, vocabulary: str) -> None:
    """On an object's schema: `field` takes exactly the vocabulary's standard codes, labelled."""
    _set_codes(schema, (field,), _standard_options(vocabulary))


def _standard(version: SchemaVersion, base: dict[str, Any]) -> dict[str, Any]:
    """Standard codes only: no `code_system`."""
    variant = copy.deepcopy(base)
    variant.get("properties", {}).pop("code_system", None)
    for path, vocabulary in version.coded.items():
        _set_codes(variant, path, _standard_options(vocabulary))
    _legal_basis_rule(variant, version, ["given"])
    return variant


def _any_code_system(version: SchemaVersion, base: dict[str, Any]) -> dict[str, Any]:
    """An agency's own codes: any code here; the server translates and checks them with the mapping."""
    variant = copy.deepcopy(base)
    variant["properties"]["code_system"] = {**_object(variant["properties"]["code_system"]),
                                            "x-server-side": ["code_system_of_your_agency"]}
    variant["required"] = [*variant.get("required", []), "code_system"]
    _unique_lists(variant, version)
    return variant


def _code_system(version: SchemaVersion, base: dict[str, Any], code_system: str, tables: Tables) -> dict[str, Any]:
    """One of the caller's code systems: the standard codes and the agency's own, each titled."""
    variant = copy.deepcopy(base)
    variant["properties"]["code_system"] = {"const": code_system, "x-server-side": ["code_system_of_your_agency"]}
    variant["required"] = [*variant.get("required", []), "code_system"]
    for path, vocabulary in version.coded.items():
        table = tables.get(vocabulary, {})
        options = dict(_standard_options(vocabulary))
        for local, standard in table.items():
            options[local] = f"{local} (= {standard}, {code_system})"
        _set_codes(variant, path, list(options.items()))
    consent_table = tables.get("consent_status", {})
    statuses = set(dict(_standard_options("consent_status"))) | set(consent_table)
    _legal_basis_rule(variant, version, sorted(s for s in statuses if consent_table.get(s, s) == "given"))
    return variant
