"""API shapes for training records and a caller's training status (no case data)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.policy.documents import SLUG_PATTERN

CourseId = Annotated[str, Field(max_length=64, pattern=SLUG_PATTERN, examples=["data-protection-basics"])]
PersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")]


class TrainingRecordIn(BaseModel):
    """A completion of a course, recorded by a coordinator of a network of the person's agency."""

    model_config = ConfigDict(extra="forbid")
    person_id: PersonId = Field(description="The console person, or the person an API client acts for (`act`).")
    agency_id: Annotated[
        str | None,
        Field(max_length=64, description="The person's agency; needed only for a person the service does not know."),
    ] = None
    course_id: CourseId
    completed_on: date = Field(description="Not in the future.")
    expires_on: date | None = Field(default=None, description="After completed_on; none: the course never expires.")


class TrainingRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    person_id: str
    course_id: str
    completed_on: date
    expires_on: date | None
    recorded_by: str
    recorded_at: datetime
    source: Literal["console", "api", "import"]


class TrainingRecordList(BaseModel):
    """A person's records, newest completion first; the latest completion of a course is the one that counts."""

    items: list[TrainingRecordOut]


class CourseStatusOut(BaseModel):
    course_id: str
    state: Literal["ok", "expiring", "expired", "missing"] = Field(
        description="ok; expiring (within 30 days); expired; or missing (never completed)."
    )
    completed_on: date | None
    expires_on: date | None


class TrainingStatus(BaseModel):
    """The acting person's standing against the courses their agency's agreements require."""

    person_id: str
    courses: list[CourseStatusOut]
