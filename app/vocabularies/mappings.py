"""Agency code mappings: an agency's own codes translated to the standard ones."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput
from app.shipped import shipped
from app.vocabularies.catalog import vocabularies
from app.vocabularies.models import CodeMapping

MAPPINGS_DIR = shipped("policies") / "mappings"
MappingId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")]
LocalCode = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class MappingError(ValueError):
    pass


class MappingIn(BaseModel):
    """A mapping document, as a file under policies/mappings/ or a POST body."""

    model_config = ConfigDict(extra="forbid")
    mapping: MappingId
    agency: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1)] = 1
    description: str | None = None
    codes: dict[str, dict[LocalCode, str]] = Field(
        description="Per vocabulary name: the agency's code -> the standard code."
    )

    @model_validator(mode="after")
    def _targets_are_standard(self) -> MappingIn:
        catalog = vocabularies()
        problems = []
        for name, table in self.codes.items():
            vocabulary = catalog.get(name)
            if vocabulary is None:
                problems.append(f"unknown vocabulary {name!r} (known: {', '.join(sorted(catalog))})")
                continue
            problems += [
                f"{name}: {local!r} maps to {target!r}, which is not a {name} code"
                for local, target in table.items()
                if not vocabulary.has(target)
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class MappingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    agency_id: str
    version: int
    codes: dict[str, dict[str, str]]
    source: str


def load_mapping_files(directory: Path = MAPPINGS_DIR) -> dict[str, MappingIn]:
    found: dict[str, MappingIn] = {}
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            mapping = MappingIn.model_validate(yaml.safe_load(path.read_text()))
        except (yaml.YAMLError, ValidationError) as exc:
            raise MappingError(f"{path.name}: {exc}") from None
        if mapping.mapping in found:
            raise MappingError(f"{path.name}: mapping {mapping.mapping!r} is defined twice")
        found[mapping.mapping] = mapping
    return found


_directory: Path = MAPPINGS_DIR


def use_directory(directory: Path) -> None:
    """Mapping files come from the configured policies directory's mappings/ (prod: never the demo's)."""
    global _directory
    _directory = directory


def file_mappings() -> dict[str, MappingIn]:
    return _mapping_files_in(_directory)


@cache
def _mapping_files_in(directory: Path) -> dict[str, MappingIn]:
    return load_mapping_files(directory)


def register(session: Session, mapping: MappingIn) -> MappingOut:
    if mapping.mapping in file_mappings() or session.get(CodeMapping, mapping.mapping) is not None:
        raise Conflict(f"Mapping {mapping.mapping!r} already exists.")
    row = CodeMapping(
        id=mapping.mapping, agency_id=mapping.agency, version=mapping.version, codes=mapping.codes
    )
    session.add(row)
    session.flush()
    return MappingOut(id=row.id, agency_id=row.agency_id, version=row.version, codes=row.codes,
                      source="api")


def list_mappings(session: Session) -> list[MappingOut]:
    rows = [
        MappingOut(id=m.mapping, agency_id=m.agency, version=m.version, codes=m.codes, source="file")
        for m in file_mappings().values()
    ]
    rows += [
        MappingOut(id=r.id, agency_id=r.agency_id, version=r.version, codes=r.codes, source="api")
        for r in session.query(CodeMapping).order_by(CodeMapping.id)
    ]
    return rows


def of_agency(session: Session, agency_id: str) -> dict[str, dict[str, dict[str, str]]]:
    """Every code system an agency may name: its mapping files and the mappings registered for it."""
    mine: dict[str, dict[str, dict[str, str]]] = {
        m.mapping: m.codes for m in file_mappings().values() if m.agency == agency_id
    }
    for row in session.query(CodeMapping).filter(CodeMapping.agency_id == agency_id):
        mine.setdefault(row.id, row.codes)
    return mine


def resolve(session: Session, mapping_id: str, agency_id: str) -> dict[str, dict[str, str]]:
    """The caller agency's mapping tables; another agency's mapping is not usable."""
    mine: dict[str, dict[str, dict[str, str]]] = {
        m.mapping: m.codes for m in file_mappings().values() if m.agency == agency_id
    }
    row = session.get(CodeMapping, mapping_id)
    if row is not None and row.agency_id == agency_id:
        mine[row.id] = row.codes
    if mapping_id not in mine:
        available = sorted(mine) + [
            r.id for r in session.query(CodeMapping).filter(CodeMapping.agency_id == agency_id)
        ]
        raise InvalidInput(
            f"Unknown code_system {mapping_id!r} for agency {agency_id}.",
            errors=[{
                "path": "$.code_system", "message": "unknown code system",
                "valid_codes": sorted(set(available)),
            }],
        )
    return mine[mapping_id]


def translate(
    tables: dict[str, dict[str, str]] | None, vocabulary: str, value: str
) -> tuple[str, bool]:
    """(standard code, whether it was translated)."""
    if tables and value in tables.get(vocabulary, {}):
        return tables[vocabulary][value], True
    return value, False


