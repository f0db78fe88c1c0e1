"""note/v1: a classified, append-only note on a referral."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.standards.formats import NO_CONTROL, NON_BLANK

SCHEMA_ID: Final = "note/v1"


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_: Literal["note/v1"] = Field(default=SCHEMA_ID, alias="schema")
    classification: Annotated[str, StringConstraints(max_length=40)] = Field(
        description="Who may see it: a `note_classification` code.",
        json_schema_extra={"x-vocabulary": "note_classification"},
    )
    text: Annotated[str, StringConstraints(max_length=20_000, pattern=NON_BLANK)] = Field(
        description="The note; at least one character that is not white space."
    )
    supersedes: Annotated[str, StringConstraints(max_length=40, pattern=NO_CONTROL)] | None = Field(
        default=None, description="Id of an earlier note on the same referral that this one corrects."
    )
    author_person: Annotated[str, StringConstraints(max_length=200, pattern=NON_BLANK)] | None = Field(
        default=None, description="Defaults to the token's `act` person."
    )


class NoteOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    schema_: str = Field(alias="schema")
    referral_id: str
    author_agency: str
    author_person: str | None
    classification: str
    text: str
    supersedes: str | None
    superseded_by: str | None = None
    created_at: datetime


class NotePage(BaseModel):
    items: list[NoteOut]
    next_cursor: str | None
