"""API shapes for agencies and clients."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$", strip_whitespace=True)
]


class Sector(StrEnum):
    local_government = "local_government"
    social_services = "social_services"
    education = "education"
    health = "health"
    police = "police"
    youth_work = "youth_work"
    religious_community = "religious_community"
    civil_society = "civil_society"
    private_sector = "private_sector"
    national_authority = "national_authority"


class Role(StrEnum):
    referrer = "referrer"
    caseworker = "caseworker"
    coordinator = "coordinator"
    partner_reader = "partner_reader"
    statistics_reader = "statistics_reader"
    auditor = "auditor"
    admin = "admin"
    signatory = "signatory"  # signs agreement versions for the agency (with coordinator, who also may)


class AgencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Slug
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    sector: Sector


class AgencyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    sector: Sector
    created_at: datetime


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agency_id: Slug
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    roles: Annotated[list[Role], Field(min_length=1)]
    id: Slug | None = Field(default=None, description="Chosen client id; generated when omitted.")


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    agency_id: str
    name: str
    roles: list[Role]
    disabled: bool
    created_at: datetime
    disabled_at: datetime | None


class ClientCreated(ClientOut):
    client_secret: str = Field(description="Shown once; only a salted hash is stored.")


class AgencyPage(BaseModel):
    items: list[AgencyOut]
    next_cursor: str | None


class ClientPage(BaseModel):
    items: list[ClientOut]
    next_cursor: str | None
