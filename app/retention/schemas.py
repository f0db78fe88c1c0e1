"""API shapes for legal holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Reason = Annotated[str, StringConstraints(min_length=10, max_length=1000, strip_whitespace=True)]


class CaseHoldIn(BaseModel):
    """A hold on one referral, placed by a coordinator."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(
        description="Why the records must be kept (e.g. the proceedings' reference)."
    )


class HoldIn(BaseModel):
    """A hold on one referral, or on every referral an agency made or is assigned to."""

    model_config = ConfigDict(extra="forbid")
    agency_id: Annotated[str | None, Field(max_length=64)] = None
    referral_id: Annotated[str | None, Field(max_length=40)] = None
    reason: Reason

    @model_validator(mode="after")
    def _one_target(self) -> HoldIn:
        if (self.agency_id is None) == (self.referral_id is None):
            raise ValueError("name exactly one of agency_id and referral_id")
        return self


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(description="Why the hold ends.")


class HoldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    scope: Literal["agency", "referral"]
    agency_id: str | None
    referral_id: str | None
    reason: str
    placed_by_agency: str
    placed_by_client: str
    placed_at: datetime
    lifted_at: datetime | None
    lifted_by_client: str | None
    lift_reason: str | None
    active: bool


class HoldPage(BaseModel):
    items: list[HoldOut]
    next_cursor: str | None
