"""API shapes for agreements and decision explanations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, model_validator

Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class AgreementOut(BaseModel):
    id: str
    version: int
    title: str
    content_hash: str
    effective_from: date
    review_by: date
    in_force: bool
    controller_contact: str
    parties: list[str]
    purposes: dict[str, str]
    networks: list[str] = Field(description="The networks whose records it decides.")


class MeetingsOut(BaseModel):
    cadence: str = Field(description="ISO 8601 duration between regular meetings.")
    chair: str | None = Field(description="The chairing agency (the coordinator unless the protocol names "
                                          "another member); null for an implicit network.")


class DeadlinesOut(BaseModel):
    triage: dict[str, str] = Field(description="By urgency: time from submission to triage (ISO 8601).")
    assign: dict[str, str] = Field(description="By urgency: time from acceptance to assignment (ISO 8601).")


class ProtocolOut(BaseModel):
    """How the network works its cases, as its file declares (defaults where it is silent)."""

    meetings: MeetingsOut
    deadlines: DeadlinesOut
    reviews_after_closure: list[str]
    repeat_referral_window: str
    action_statuses: list[str]
    reassessment_by: list[str]


class NetworkOut(BaseModel):
    """A prevention network on this deployment."""

    id: str
    name: str
    locales: list[str]
    coordinator: str | None = Field(description="The coordinator agency (focal point); null for an implicit network.")
    members: list[str]
    agreements: list[str]
    protocol: ProtocolOut
    training: bool = Field(default=False, description="A training network: synthetic people and cases, isolated "
                                                      "from every real network (docs/training.md).")


class NetworkPage(BaseModel):
    items: list[NetworkOut]
    next_cursor: str | None = None


class ProposedOut(BaseModel):
    """A version loaded but not yet signed by every party: it decides nothing yet."""

    id: str
    version: int
    missing: list[str] = Field(description="Who has yet to sign: party agencies, or `agency/person` for the"
                                           " signatories the agreement names.")


class AgreementPage(BaseModel):
    items: list[AgreementOut]
    proposed: list[ProposedOut] = Field(default_factory=list, description="Versions awaiting signatures.")
    next_cursor: str | None = None


class SignatureOut(BaseModel):
    """One party's signature of a version's text."""

    agreement_id: str
    version: int
    content_hash: str = Field(description="SHA-256 of the agreement file's text that was signed.")
    agency: str
    person: str = Field(description="The console person or API client (its acting person) who signed.")
    signed_at: datetime
    via: Literal["api", "console", "demo"]


class SignaturePage(BaseModel):
    items: list[SignatureOut]
    next_cursor: str | None = None


class AgreementVersionOut(BaseModel):
    """A version of an agreement as loaded: its state and who signed it."""

    agreement_id: str
    version: int
    content_hash: str
    state: Literal["proposed", "in_force", "superseded"] = Field(
        description="`proposed` decides nothing until every party (or named signatory) has signed it; the last"
                    " signature puts it `in_force`, and the version before it is then `superseded`.")
    first_loaded_at: datetime
    activated_at: datetime | None
    parties: list[str]
    signatories: list[str] = Field(description="The named signatories (`agency/person`); empty: a coordinator"
                                               " or signatory of every party signs.")
    missing: list[str] = Field(description="Who has yet to sign (a proposed version).")
    signatures: list[SignatureOut]


class AgreementVersionPage(BaseModel):
    items: list[AgreementVersionOut]
    next_cursor: str | None = None


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="The content hash of the version you read and sign; a different one is refused (409).")


class RecordLike(BaseModel):
    """A record described by the attributes rules look at, for "a record like this"."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["referral", "note", "statistics"] = "referral"
    consent: Code | None = None
    status: Code | None = None
    risk_level: Code | None = None
    classification: Code | None = None
    intervention_type: Code | None = None
    urgency: Code | None = None
    concerns: Annotated[list[Code], Field(max_length=32)] | None = Field(
        default=None, description="The record's concerns; a `concerns` condition holds when one of them is listed."
    )
    invited: StrictBool | None = Field(
        default=None,
        description="Read through a meeting's agenda item your agency is invited to, while the meeting is open"
        " (an `invited` condition); default: false for a referral or note, as on every other read.",
    )
    network: Code | None = Field(default=None, description="Default: your agency's (first) network.")
    relations: Annotated[list[Literal["owner", "referrer", "assigned"]], Field(max_length=3)] = Field(
        default_factory=list, description="Your relation to the hypothetical record."
    )


class ExplainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Code
    view: Code | None = None
    referral_id: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None, description="A referral you are involved in; or describe one in `record`."
    )
    record: RecordLike | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> ExplainIn:
        if (self.referral_id is None) == (self.record is None):
            raise ValueError("give exactly one of referral_id or record")
        return self


class ExplainOut(BaseModel):
    decision: dict[str, Any]
    rules: list[dict[str, Any]]
    winning_deny: str | None
    purpose: str
    view: str | None
    now: date


class ReloadOut(BaseModel):
    in_force: list[str]
    proposed: list[str] = Field(default_factory=list, description="Loaded versions awaiting signatures (id@vN).")
    errors: list[dict[str, Any]]
    warnings: list[str]
