"""Request and response bodies of the case conference: meetings, agenda items, minutes, actions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from app.referrals.schemas import AgencyId, CodeStr, Text2000, coded
from app.standards import formats


def _strip(value: str) -> str:
    return value.strip()


MinutesText = Annotated[str, StringConstraints(max_length=10_000, pattern=formats.NON_BLANK), AfterValidator(_strip)]
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Agencies = Annotated[list[AgencyId], Field(max_length=30)]

MeetingKind = Literal["regular", "emergency"]
Decision = Literal["accept", "decline", "assign", "continue_support", "close", "escalate", "refer_on"]
ItemReason = Literal["newly_triaged", "triage_overdue", "assignment_overdue", "review_due", "repeat_referral",
                     "open_actions", "added"]


class AgendaItemIn(BaseModel):
    """A referral for the agenda, and the agencies invited to it (default: its referrer and assignees)."""

    model_config = ConfigDict(extra="forbid")
    referral_id: RecordId
    invited: Agencies | None = Field(
        default=None, description="Agencies invited to this item; default: the referring and assigned agencies.")


class MeetingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheduled_for: AwareDatetime = Field(description="When the meeting sits, with its UTC offset; not in the past.")
    kind: MeetingKind = Field("regular", description="`emergency`: convened outside the cadence, agenda not proposed.")
    propose_agenda: bool = Field(
        True, description="Propose the agenda from the network's state (regular meetings): newly triaged referrals, "
        "overdue triage and assignment, reviews due, repeat referrals, referrals with open actions.")
    items: Annotated[list[AgendaItemIn], Field(max_length=100)] = Field(
        default_factory=list, description="Items the chair adds to the proposal.")


class AgendaItemPatch(BaseModel):
    """The chair edits an item: who is invited, who attended (both replace the lists held)."""

    model_config = ConfigDict(extra="forbid")
    invited: Agencies | None = None
    attended: Agencies | None = Field(default=None, description="Agencies present for this item; each invited.")


class MinutesIn(BaseModel):
    """Minutes of an item, and the panel's decision; after the meeting closes, a correction (no decision)."""

    model_config = ConfigDict(extra="forbid")
    text: MinutesText = Field(description="What was said and agreed; sealed under the person's data key.")
    decision: Decision | None = Field(
        default=None, description="Once per item. `accept`, `decline`, `assign`, `close` and `refer_on` (closed as "
        "`referred_elsewhere`) move the referral by the ordinary transition rules; `continue_support` and "
        "`escalate` record the decision only.")
    agencies: Agencies = Field(default_factory=list, description="For `assign`: the receiving agencies.")
    outcome: CodeStr | None = coded("closure_outcome", "For `close`: the outcome.", default=None)


class AgendaItemOut(BaseModel):
    number: int
    referral_id: str
    reason: ItemReason
    invited: list[str]
    attended: list[str] | None
    decision: Decision | None


class MeetingOut(BaseModel):
    """A meeting and the agenda items the caller may see (the chair: all; an invited agency: its own)."""

    id: str
    network: str
    kind: MeetingKind
    scheduled_for: datetime
    status: Literal["scheduled", "closed"]
    chair: str
    closed_at: datetime | None
    agenda: list[AgendaItemOut]


class MeetingSummary(BaseModel):
    id: str
    network: str
    kind: MeetingKind
    scheduled_for: datetime
    status: Literal["scheduled", "closed"]


class MeetingPage(BaseModel):
    items: list[MeetingSummary]


class MeetingReceipt(BaseModel):
    """A meeting write whose caller stated no purpose: no agenda, nothing of the cases."""

    id: str
    status: Literal["scheduled", "closed"]


class MinutesReceipt(BaseModel):
    id: int = Field(description="The minutes entry.")
    meeting_id: str
    number: int
    kind: Literal["minutes", "correction"]
    decision: Decision | None
    at: datetime


class MinutesEntryOut(BaseModel):
    id: int
    kind: Literal["minutes", "correction"]
    text: str | None = Field(description="Null once the person's data is erased.")
    decision: Decision | None
    by_agency: str
    at: datetime


class ItemMinutesOut(BaseModel):
    meeting_id: str
    scheduled_for: datetime
    number: int
    decision: Decision | None
    attended: list[str] | None
    entries: list[MinutesEntryOut]


class MinutesPage(BaseModel):
    items: list[ItemMinutesOut]


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Text2000 = Field(description="What is to be done; sealed under the person's data key.")
    owner_agency: AgencyId = Field(description="The agency that owns it: a member of the referral's network.")
    due_on: date = Field(description="Not in the past.")
    meeting_id: RecordId | None = Field(default=None, description="The meeting whose item created it.")
    number: int | None = Field(default=None, ge=1, le=10_000, description="That item's number (with `meeting_id`).")


class ActionStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Annotated[str, StringConstraints(max_length=40)] = Field(
        description="One of the network protocol's action statuses (GET /v1/networks/{id}).")
    note: Text2000 | None = Field(default=None, description="A completion note; sealed.")


class ActionReceipt(BaseModel):
    id: str
    referral_id: str
    owner_agency: str
    due_on: date
    status: str


class ActionOut(BaseModel):
    id: str
    referral_id: str
    meeting_id: str | None
    number: int | None
    description: str | None = Field(description="Null once the person's data is erased.")
    owner_agency: str
    due_on: date
    status: str = Field(description="A protocol action status, or `overdue`: open past its due date.")
    completion_note: str | None
    created_at: datetime
    updated_at: datetime


class ActionPage(BaseModel):
    items: list[ActionOut]
