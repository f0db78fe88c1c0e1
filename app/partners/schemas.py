"""API shapes for partner summaries."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SummaryItem(BaseModel):
    """A referral projected to the summary view the agreement grants, plus how long to keep it."""

    model_config = ConfigDict(extra="allow")
    id: str
    retain_until: date = Field(description="Delete your copy by this date (from the rule's retention).")
    view: str


class SummaryPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None
    withdrawn: list[str] = Field(
        description="Summaries you received and may no longer keep (consent withdrawn, case moved "
        "on, erased): delete them."
    )
    synced_at: str = Field(description="Pass as updated_since on your next sync.")
