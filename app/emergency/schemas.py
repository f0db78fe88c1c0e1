"""API shapes for emergency access."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

MIN_REASON = 20


class EmergencyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


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
    finding: str | None = None
    reason: str | None = None


class GrantPage(BaseModel):
    items: list[GrantOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    finding: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]
