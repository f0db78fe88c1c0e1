"""The published schema versions: one entry per `name/version`, the model the API validates it with.

A new version is a new model and one entry here; app/standards/publish.py turns each entry into
its JSON Schema, and every version listed stays accepted and served (docs/schemas.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pydantic import BaseModel

from app.notes.schemas import NoteIn
from app.referrals.schemas import CODED_FIELDS, CODED_FIELDS_V2, SERVER_SIDE_RULES, ReferralIn, ReferralInV2

EVOLUTION = (
    "Within a version, changes are additive only: new optional fields and new codes. "
    "Renaming, removing or tightening a field makes a new version (v2), and every older "
    "version stays accepted and served."
)
Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One published format: its model, where its coded fields sit, and what only the server checks."""

    name: str
    version: str
    model: type[BaseModel]
    summary: str
    coded: Mapping[Path, str] = field(default_factory=dict)
    # The consent conditional: (path of the object, status field, basis field), if the format has one.
    consent: Path | None = None
    server_side: Mapping[str, str] = field(default_factory=dict)
    code_systems: bool = False  # codes may be an agency's own (`code_system`)

    @property
    def id(self) -> str:
        return f"{self.name}/{self.version}"


_NOTE_RULES = {
    "supersedes_same_referral": "supersedes names an earlier note on the same referral.",
    "note_writer": "the caller may write notes on the referral (writes are decided like reads).",
}

VERSIONS: tuple[SchemaVersion, ...] = (
    SchemaVersion(
        "referral", "v1", ReferralIn, "A referral: the person, the concerns, the risk and the consent.",
        coded=MappingProxyType(dict(CODED_FIELDS)), consent=("consent",), server_side=SERVER_SIDE_RULES,
        code_systems=True,
    ),
    SchemaVersion(
        "referral", "v2", ReferralInV2,
        "referral/v1 plus a risk (re-)assessment and the interventions under way (`schema` is required).",
        coded=MappingProxyType(dict(CODED_FIELDS_V2)), consent=("consent",), server_side=SERVER_SIDE_RULES,
        code_systems=True,
    ),
    SchemaVersion(
        "note", "v1", NoteIn, "A classified, append-only note on a referral.",
        coded=MappingProxyType({("classification",): "note_classification"}), server_side=_NOTE_RULES,
    ),
)
_BY_ID: Mapping[tuple[str, str], SchemaVersion] = MappingProxyType({(v.name, v.version): v for v in VERSIONS})


def find(name: str, version: str) -> SchemaVersion | None:
    return _BY_ID.get((name, version))


def published_ids() -> list[str]:
    return [v.id for v in VERSIONS]
