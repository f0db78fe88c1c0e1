"""API shapes for legal holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Reason = Annotated[str, StringConstraints(min_length=10, max_length=1000, strip_whitespace=True)]


class CaseHoldIn(BaseModel):
    """A hold on one referral, placed by its network's coordinator."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(
        description="Why the records must be kept (e.g. the proceedings' reference). Sealed with the "
        "person's data key; shown only in reads of the referral's holds that state a purpose."
    )


class HoldIn(BaseModel):
    """An operator's hold on every referral an agency made or is assigned to."""

    model_config = ConfigDict(extra="forbid")
    agency_id: Annotated[str, Field(max_length=64)]
    reason: Reason = Field(
        description="Why the agency's records must be kept. The operator's text, kept in clear: "
        "name the agency and the proceedings, never a person."
    )


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(description="Why the hold ends.")


class HoldOut(BaseModel):
    """A legal hold. A case hold's reasons appear only in `GET /v1/referrals/{id}/legal-hold`
    (with `X-Purpose`); replies to placing or lifting one carry none."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    scope: Literal["agency", "referral"]
    agency_id: str | None
    referral_id: str | None
    reason: str | None
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
