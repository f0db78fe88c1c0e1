"""API shapes for emergency access, its review and the agencies an auditor flagged."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class Finding(StrEnum):
    """An auditor's finding on a grant: `unjustified` revokes it at once and flags the agency."""

    justified = "justified"
    unjustified = "unjustified"


class EmergencyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=2000),
        Field(description="Why there is a risk to life now; checked against the agreement's reason rule."),
    ] = ""


class GrantOut(BaseModel):
    id: str
    referral_id: str
    agency_id: str
    client_id: str
    person: str | None
    view: str
    fields: list[str]
    granted_at: datetime
    expires_at: datetime
    active: bool
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    finding: Finding | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    flag_id: str | None = Field(None, description="The flag an `unjustified` finding put on the agency.")
    # Shown to auditors only (the grant listing); both are sealed with the person's data key.
    reason: str | None = None
    finding_note: str | None = None


class GrantPage(BaseModel):
    items: list[GrantOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    finding: Finding
    note: Annotated[
        str | None,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
        Field(description="Optional free text; sealed with the person's data key, never logged."),
    ] = None


class FlagOut(BaseModel):
    id: str
    agency_id: str
    network_id: str
    grant_id: str
    flagged_at: datetime
    flagged_by: str
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    active: bool


class FlagPage(BaseModel):
    items: list[FlagOut]
    next_cursor: str | None
