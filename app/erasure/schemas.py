"""API shapes for erasure requests."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class LegalGround(StrEnum):
    """The grounds of GDPR Art. 17(1), and an order of a court or supervisory authority."""

    no_longer_necessary = "no_longer_necessary"  # 17(1)(a)
    consent_withdrawn = "consent_withdrawn"  # 17(1)(b)
    objection = "objection"  # 17(1)(c)
    unlawfully_processed = "unlawfully_processed"  # 17(1)(d)
    legal_obligation = "legal_obligation"  # 17(1)(e)
    child_information_society = "child_information_society"  # 17(1)(f)
    order = "order"  # a court or supervisory-authority order


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    legal_ground: LegalGround
    reference: Annotated[
        str,
        StringConstraints(
            min_length=1, max_length=200, strip_whitespace=True, pattern=r"^[^\x00-\x1f]+$"
        ),
    ] = Field(description="Your reference for the request (e.g. the data-subject request number).")


class ErasureOut(BaseModel):
    subject_id: str
    status: str = Field(description="`erased`")
    erased_at: datetime
    referral_ids: list[str]
    notes: int
    withdrawn_from: list[str] = Field(description="Partner agencies sent a withdrawal notice.")
