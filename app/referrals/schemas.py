"""referral/v1: the standard referral format, single source of truth for API and JSON Schema."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

SCHEMA_ID: Final = "referral/v1"

Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Narrative = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
AgencyId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")]


def coded(vocabulary: str, description: str = "", **kwargs: Any) -> Any:
    """A code from a controlled vocabulary (or from the agency's code_system)."""
    return Field(
        **kwargs,
        description=(description + " " if description else "")
        + f"A code from the `{vocabulary}` vocabulary (GET /v1/vocabularies/{vocabulary}).",
        json_schema_extra={"x-vocabulary": vocabulary},
    )


CodeStr = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]

# Where each coded field sits, for translation and checking: path -> vocabulary.
CODED_FIELDS: dict[tuple[str, ...], str] = {
    ("subject", "gender"): "gender",
    ("concerns",): "concern_category",
    ("vulnerability_factors",): "vulnerability_factor",
    ("protective_factors",): "protective_factor",
    ("risk_level",): "risk_level",
    ("urgency",): "urgency",
    ("consent", "status"): "consent_status",
    ("consent", "legal_basis"): "legal_basis",
    ("requested_services",): "requested_service",
    ("intervention_type",): "intervention_type",
}


class Identifier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")] = Field(
        description="Who issued it, e.g. `national_id`, `school-north:pupil`."
    )
    value: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class SubjectIn(BaseModel):
    """The person referred. Identifying and special-category fields are encrypted at rest."""

    model_config = ConfigDict(extra="forbid")
    given_name: Text200 | None = None
    family_name: Text200 | None = None
    date_of_birth: date | None = None
    gender: CodeStr | None = coded("gender", default=None)
    phone: Annotated[str, StringConstraints(max_length=40, strip_whitespace=True)] | None = None
    email: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] | None = None
    address: Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)] | None = None
    district: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)] | None = (
        Field(default=None, description="Stored in clear for sharing and statistics.")
    )
    identifiers: Annotated[list[Identifier], Field(max_length=10)] = Field(
        default_factory=list,
        description="Agency-supplied identifiers; a later referral with the same one is linked "
        "to the same subject (matched by keyed hash, never stored in clear).",
    )
    ethnicity: Text200 | None = Field(default=None, description="Special category (GDPR Art. 9).")
    religion: Text200 | None = Field(default=None, description="Special category (GDPR Art. 9).")
    language: Annotated[str, StringConstraints(max_length=35)] | None = None

    @model_validator(mode="after")
    def _birth_date_is_past(self) -> SubjectIn:
        if self.date_of_birth is not None and self.date_of_birth > date.today():
            raise ValueError("date_of_birth is in the future")
        return self


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: CodeStr = coded("consent_status")
    legal_basis: CodeStr | None = coded(
        "legal_basis",
        "Required when status is not `given`: the basis for processing without consent.",
        default=None,
    )
    recorded_at: datetime | None = Field(default=None, description="Defaults to now.")
    recorded_by: Text200 | None = None


class ReferralIn(BaseModel):
    """What a partner agency posts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_: Literal["referral/v1"] = Field(default=SCHEMA_ID, alias="schema")
    code_system: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="Id of the agency's code mapping when codes are the agency's own."
    )
    network: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)] | None = Field(
        default=None,
        description="The network the referral belongs to; required when the referring agency is a member of several.",
    )
    subject: SubjectIn
    referring_person: Text200 | None = Field(
        default=None, description="Defaults to the person in the token's `act` claim."
    )
    concerns: Annotated[list[CodeStr], Field(min_length=1, max_length=20)] = coded("concern_category")
    vulnerability_factors: Annotated[list[CodeStr], Field(max_length=30)] = Field(
        default_factory=list, json_schema_extra={"x-vocabulary": "vulnerability_factor"}
    )
    protective_factors: Annotated[list[CodeStr], Field(max_length=30)] = Field(
        default_factory=list, json_schema_extra={"x-vocabulary": "protective_factor"}
    )
    risk_level: CodeStr = coded("risk_level")
    urgency: CodeStr = Field(default="routine", json_schema_extra={"x-vocabulary": "urgency"})
    consent: ConsentIn
    requested_services: Annotated[list[CodeStr], Field(max_length=20)] = Field(
        default_factory=list, json_schema_extra={"x-vocabulary": "requested_service"}
    )
    intervention_type: CodeStr | None = coded("intervention_type", default=None)
    narrative: Narrative | None = None
    do_not_contact: bool = Field(default=False, description="Do not contact the person directly.")


class ConsentUpdate(BaseModel):
    """A new consent record: e.g. the person withdrew consent, or gave it."""

    model_config = ConfigDict(extra="forbid")
    status: CodeStr = coded("consent_status")
    legal_basis: CodeStr | None = coded(
        "legal_basis", "Required when status is not `given`.", default=None
    )
    recorded_by: Text200 | None = None
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None


class StatusChangeOut(BaseModel):
    from_status: str | None
    status: str
    at: datetime
    by_agency: str
    reason: str | None = None
    outcome: str | None = None
    agencies: list[str] = Field(default_factory=list)
    to_network: str | None = None


class SubjectOut(BaseModel):
    """The subject as a view shows it: any field may be withheld."""

    id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    gender: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    identifiers: list[Identifier] | None = None
    ethnicity: str | None = None
    religion: str | None = None
    language: str | None = None
    age_band: str | None = None
    district: str | None = None


class ConsentOut(BaseModel):
    status: str
    legal_basis: str | None = None
    recorded_at: datetime
    recorded_by: str | None = None


class ReferralOut(BaseModel):
    """A referral as a view shows it: only the fields the caller may receive are present."""

    model_config = ConfigDict(populate_by_name=True)
    id: str
    schema_: str | None = Field(default=None, alias="schema")
    network: str | None = None
    referring_agency: str | None = None
    referring_person: str | None = None
    subject: SubjectOut | None = None
    concerns: list[str] | None = None
    vulnerability_factors: list[str] | None = None
    protective_factors: list[str] | None = None
    risk_level: str | None = None
    urgency: str | None = None
    consent: ConsentOut | None = None
    requested_services: list[str] | None = None
    intervention_type: str | None = None
    narrative: str | None = None
    do_not_contact: bool | None = None
    code_system: str | None = None
    original_codes: dict[str, Any] | None = None
    status: str | None = None
    status_history: list[StatusChangeOut] | None = None
    outcome: str | None = None
    assigned_agencies: list[str] | None = None
    link_conflicts: list[str] | None = Field(
        default=None,
        description="Known subjects this referral's identifiers pointed to when they named more than "
        "one person: it was accepted unlinked, for the network's coordinator to resolve.",
    )
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ReferralPage(BaseModel):
    items: list[ReferralOut]
    next_cursor: str | None


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Annotated[str, StringConstraints(max_length=40)] = Field(
        description="Target status (`referral_status` vocabulary)."
    )
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    agencies: Annotated[list[AgencyId], Field(max_length=20)] = Field(
        default_factory=list, description="For `assigned`: the receiving agencies."
    )
    outcome: CodeStr | None = coded("closure_outcome", "Required for `closed`.", default=None)
    to_network: Text200 | None = Field(default=None, description="For `transferred`: the network.")


class EventOut(BaseModel):
    id: str
    kind: Literal["status", "emergency_access", "emergency_revoked"] = Field(
        "status",
        description="`status`: a lifecycle step. `emergency_access` / `emergency_revoked`: an agency broke the"
        " glass on the referral / an auditor revoked that grant; shown only to the referral's owner agency"
        " and its network's coordinator.",
    )
    referral_id: str
    from_status: str | None = Field(None, description="Only with a view that includes `status_history`.")
    status: str
    outcome: str | None = Field(None, description="Only with a view that includes `outcome`.")
    at: datetime
    by_agency: str | None = Field(None, description="Only with a view that includes `status_history`.")
    grant_id: str | None = Field(None, description="Emergency entries: the grant.")
    agency_id: str | None = Field(None, description="Emergency entries: the agency that holds the grant.")
    expires_at: datetime | None = Field(None, description="Emergency entries: when the grant ends.")


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


def referral_field_paths() -> frozenset[str]:
    """Every field path a view may name: top-level fields and subject.* fields."""
    top = {f.alias or name for name, f in ReferralOut.model_fields.items() if name != "subject"}
    subject = {f"subject.{name}" for name in SubjectOut.model_fields}
    return frozenset(top | subject)


SPECIAL_CATEGORY_FIELDS = frozenset({"subject.ethnicity", "subject.religion"})
DIRECT_IDENTIFIERS = frozenset({
    "subject.given_name", "subject.family_name", "subject.date_of_birth", "subject.phone",
    "subject.email", "subject.address", "subject.identifiers",
})
# Fields inside the sealed identity document.
IDENTITY_FIELDS = ("given_name", "family_name", "date_of_birth", "gender", "phone", "email",
                   "address", "identifiers", "ethnicity", "religion", "language")
