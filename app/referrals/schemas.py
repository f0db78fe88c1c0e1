"""referral/v1 and referral/v2: the standard referral formats, single source of truth for API and JSON Schema.

The published JSON Schema is generated from these models (app/standards/publish.py adds the
vocabulary enums and the conditionals), and every constraint here is one a JSON Schema can
state: strict types (no `"yes"` for a boolean, no datetime for a date), formats as patterns the
schema carries verbatim (app/standards/formats.py), unique code lists, non-blank text. What only
the server can check is listed in SERVER_SIDE_RULES and published as `x-server-side`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from app.standards import formats

SCHEMA_ID: Final = "referral/v1"
SCHEMA_V2: Final = "referral/v2"


def _strip(value: str) -> str:
    # Validated as sent (length, non-blank), then stored without the padding.
    return value.strip()


def _unique(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("codes must not repeat")
    return values


# Free text: at least one character that is not white space, at most N characters as sent; stored trimmed.
Text40 = Annotated[str, StringConstraints(max_length=40, pattern=formats.NON_BLANK), AfterValidator(_strip)]
Text100 = Annotated[str, StringConstraints(max_length=100, pattern=formats.NON_BLANK), AfterValidator(_strip)]
Text200 = Annotated[str, StringConstraints(max_length=200, pattern=formats.NON_BLANK), AfterValidator(_strip)]
Text500 = Annotated[str, StringConstraints(max_length=500, pattern=formats.NON_BLANK), AfterValidator(_strip)]
Text2000 = Annotated[str, StringConstraints(max_length=2000, pattern=formats.NON_BLANK), AfterValidator(_strip)]
Narrative = Annotated[str, StringConstraints(max_length=20_000, pattern=formats.NON_BLANK)]
AgencyId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")]
Language = Annotated[str, StringConstraints(max_length=35, pattern=formats.LANGUAGE_TAG)]
Email = Annotated[
    str, StringConstraints(max_length=200, pattern=formats.EMAIL),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 200, "pattern": formats.EMAIL}),
]


def _birth_date(value: object) -> date:
    today = date.today()
    born = formats.parse_date(value, formats.birth_date_pattern(today))
    if born > today:  # the schema bounds the year; the day is the server's (x-server-side)
        raise ValueError("date_of_birth is in the future")
    return born


def _plain_date(value: object) -> date:
    return formats.parse_date(value, formats.DATE)


# Statically (OpenAPI) any real date from 1900; the served JSON Schema narrows the year to this one
# (app/standards/publish.py, from formats.birth_date_pattern: the function the API checks with).
BirthDate = Annotated[date, BeforeValidator(_birth_date), WithJsonSchema(
    {"type": "string", "format": "date", "pattern": formats.DATE, "x-birth-date": True})]
PlainDate = Annotated[date, BeforeValidator(_plain_date), WithJsonSchema({"type": "string", "pattern": formats.DATE})]
Timestamp = Annotated[
    datetime, BeforeValidator(formats.parse_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": formats.TIMESTAMP}),
]


def coded(vocabulary: str, description: str = "", **kwargs: Any) -> Any:
    """A code from a controlled vocabulary (or from the agency's code_system)."""
    return Field(
        **kwargs,
        description=(description + " " if description else "")
        + f"A code from the `{vocabulary}` vocabulary (GET /v1/vocabularies/{vocabulary}).",
        json_schema_extra={"x-vocabulary": vocabulary},
    )


CodeStr = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=formats.NON_BLANK),
                    AfterValidator(_strip)]


CodeSystemId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=formats.NO_CONTROL)]
# Lists of codes in which no code repeats (`uniqueItems`); the lengths are the schema's too.
Concerns = Annotated[list[CodeStr], Field(min_length=1, max_length=20), AfterValidator(_unique)]
Codes20 = Annotated[list[CodeStr], Field(max_length=20), AfterValidator(_unique)]
Codes30 = Annotated[list[CodeStr], Field(max_length=30), AfterValidator(_unique)]


# Where each coded field sits, for translation and checking: path -> vocabulary.
# `[]` marks a list of sections (referral/v2): each item's field is coded.
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
CODED_FIELDS_V2: dict[tuple[str, ...], str] = {
    **CODED_FIELDS,
    ("risk_assessment", "level"): "risk_level",
    ("risk_assessment", "factors"): "vulnerability_factor",
    ("interventions", "[]", "type"): "intervention_type",
}

SERVER_SIDE_RULES: Final[dict[str, str]] = {
    "date_of_birth_not_in_future": "subject.date_of_birth is not after today (the schema bounds only the year).",
    "code_system_of_your_agency": "code_system names a code mapping of the posting agency; its codes are "
    "translated, and codes that translate to the same standard code count once.",
    "network_of_your_agency": "network names a network the posting agency is a party to in an agreement in "
    "force; without it, the agency must belong to exactly one.",
    "referrer_role": "the caller holds the referrer role and its agency is a party to an agreement in force.",
    "identity_link": "identifiers link the referral to a known person; a concurrent referral about the same "
    "person may ask for a retry (409), and a person whose data was erased cannot be referred by the same "
    "identifier (410). Identifiers naming several people are accepted unlinked (link_conflicts).",
}
"""What the schema cannot state, published as `x-server-side`: why a schema-valid body may be refused."""


class Identifier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")] = Field(
        description="Who issued it, e.g. `national_id`, `school-north:pupil`."
    )
    value: Text100


class SubjectIn(BaseModel):
    """The person referred. Identifying and special-category fields are encrypted at rest."""

    model_config = ConfigDict(extra="forbid")
    given_name: Text200 | None = None
    family_name: Text200 | None = None
    date_of_birth: BirthDate | None = Field(
        default=None, description="YYYY-MM-DD, from 1900-01-01; not after today (checked by the server)."
    )
    gender: CodeStr | None = coded("gender", default=None)
    phone: Text40 | None = None
    email: Email | None = None
    address: Text500 | None = None
    district: Text100 | None = Field(default=None, description="Stored in clear for sharing and statistics.")
    identifiers: Annotated[list[Identifier], Field(max_length=10)] = Field(
        default_factory=list,
        description="Agency-supplied identifiers; a later referral with the same one is linked "
        "to the same subject (matched by keyed hash, never stored in clear).",
    )
    ethnicity: Text200 | None = Field(default=None, description="Special category (GDPR Art. 9).")
    religion: Text200 | None = Field(default=None, description="Special category (GDPR Art. 9).")
    language: Language | None = Field(default=None, description="A BCP 47 language tag, e.g. `ar-LB`.")


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: CodeStr = coded("consent_status")
    legal_basis: CodeStr | None = coded(
        "legal_basis",
        "Required when status is not `given`: the basis for processing without consent.",
        default=None,
    )
    recorded_at: Timestamp | None = Field(default=None, description="Defaults to now; with a time zone.")
    recorded_by: Text200 | None = None


class ReferralIn(BaseModel):
    """What a partner agency posts (referral/v1)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_: Literal["referral/v1"] = Field(default=SCHEMA_ID, alias="schema")
    code_system: CodeSystemId | None = Field(
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
    concerns: Concerns = coded("concern_category")
    vulnerability_factors: Codes30 = Field(
        default_factory=list, json_schema_extra={"x-vocabulary": "vulnerability_factor"}
    )
    protective_factors: Codes30 = Field(
        default_factory=list, json_schema_extra={"x-vocabulary": "protective_factor"}
    )
    risk_level: CodeStr = coded("risk_level")
    urgency: CodeStr = Field(default="routine", json_schema_extra={"x-vocabulary": "urgency"})
    consent: ConsentIn
    requested_services: Codes20 = Field(
        default_factory=list, json_schema_extra={"x-vocabulary": "requested_service"}
    )
    intervention_type: CodeStr | None = coded("intervention_type", default=None)
    narrative: Narrative | None = None
    do_not_contact: StrictBool = Field(default=False, description="Do not contact the person directly.")


class RiskAssessmentIn(BaseModel):
    """referral/v2: a (re-)assessment of the risk, with the tool used and when to look again."""

    model_config = ConfigDict(extra="forbid")
    assessed_at: Timestamp = Field(description="When the assessment was made; with a time zone.")
    tool: Text200 | None = Field(default=None, description="The instrument or protocol used, e.g. `VERA-2R`.")
    level: CodeStr = coded("risk_level")
    factors: Codes30 = Field(default_factory=list, json_schema_extra={"x-vocabulary": "vulnerability_factor"})
    next_review: PlainDate | None = Field(default=None, description="When the risk should be assessed again.")


class InterventionIn(BaseModel):
    """referral/v2: one intervention already under way or done for the person."""

    model_config = ConfigDict(extra="forbid")
    type: CodeStr = coded("intervention_type")
    provider_agency: AgencyId | None = Field(default=None, description="The agency providing it (its id).")
    started: PlainDate | None = None
    ended: PlainDate | None = None
    outcome: Text2000 | None = Field(default=None, description="What came of it, in words.")


class ReferralInV2(ReferralIn):
    """What a partner agency posts (referral/v2): v1 plus a risk assessment and interventions."""

    schema_: Literal["referral/v2"] = Field(alias="schema")  # type: ignore[assignment]
    risk_assessment: RiskAssessmentIn | None = None
    interventions: Annotated[list[InterventionIn], Field(max_length=20)] = Field(default_factory=list)


V2_SECTIONS: Final = ("risk_assessment", "interventions")
"""The referral/v2 parts stored sealed together (app/referrals/sections.py)."""
REFERRAL_MODELS: Final[dict[str, type[ReferralIn]]] = {SCHEMA_ID: ReferralIn, SCHEMA_V2: ReferralInV2}
"""Each accepted referral schema id and the model that validates it (app/standards/registry.py publishes them)."""


class ReferralPost(ReferralInV2):
    """The body of POST /v1/referrals: any accepted version, told apart by `schema` (absent: referral/v1).

    One model, not a tagged union, so that an error's path is the body's own (`$.subject.…`). The
    published schema of each version is its own model; this one only routes, and refuses a v2
    section in a v1 body exactly as referral/v1's `additionalProperties: false` does.
    """

    schema_: Literal["referral/v1", "referral/v2"] = Field(default=SCHEMA_ID, alias="schema")  # type: ignore[assignment]

    @field_validator(*V2_SECTIONS)
    @classmethod
    def _only_in_v2(cls, value: Any, info: ValidationInfo) -> Any:
        if info.data.get("schema_", SCHEMA_ID) != SCHEMA_V2:
            raise ValueError(f"{info.field_name} is part of referral/v2: send \"schema\": \"referral/v2\"")
        return value

    def versioned(self) -> ReferralIn:
        """The body as its own version's model."""
        model = REFERRAL_MODELS[self.schema_]
        return model.model_validate(self.model_dump(by_alias=True, exclude_unset=True))


class ConsentUpdate(BaseModel):
    """A new consent record: e.g. the person withdrew consent, or gave it."""

    model_config = ConfigDict(extra="forbid")
    status: CodeStr = coded("consent_status")
    legal_basis: CodeStr | None = coded(
        "legal_basis", "Required when status is not `given`.", default=None
    )
    recorded_by: Text200 | None = None
    reason: Text2000 | None = None


class AssessmentIn(BaseModel):
    """A re-assessment: the fields given replace the current ones; the reason says why."""

    model_config = ConfigDict(extra="forbid")
    risk_level: CodeStr | None = coded("risk_level", default=None)
    concerns: Concerns | None = coded("concern_category", default=None)
    vulnerability_factors: Codes30 | None = Field(default=None,
                                                  json_schema_extra={"x-vocabulary": "vulnerability_factor"})
    protective_factors: Codes30 | None = Field(default=None, json_schema_extra={"x-vocabulary": "protective_factor"})
    intervention_type: CodeStr | None = coded("intervention_type", default=None)
    reason: Text2000 = Field(description="Why the case is re-assessed; sealed, like every free text.")
    assessed_by: Text200 | None = Field(default=None, description="Defaults to the person in the token's `act` claim.")


class AssessmentOut(BaseModel):
    number: int = Field(description="1 for the first re-assessment, then 2, ...")
    at: datetime
    by_agency: str
    risk_level: str
    concerns: list[str]
    vulnerability_factors: list[str]
    protective_factors: list[str]
    intervention_type: str | None
    reason: str | None = Field(description="Null once the person's data is erased.")
    assessed_by: str | None


class AssessmentPage(BaseModel):
    items: list[AssessmentOut]


WorklistKind = Literal["triage_overdue", "assignment_overdue", "review_due", "repeat_referral",
                       "agreement_review_60", "agreement_review_30"]
ReferralItemKind = Literal["triage_overdue", "assignment_overdue", "review_due", "repeat_referral"]


class WorklistItem(BaseModel):
    referral_id: str
    kind: ReferralItemKind
    due_since: datetime = Field(description="When it fell due (for a repeat referral: when it was made).")
    status: str
    urgency: str
    detail: str = Field(description="What the protocol asked, in words.")


class AgreementReviewItem(BaseModel):
    """An agreement due for review: after its review_by it decides nothing until a renewed version is signed."""

    kind: Literal["agreement_review_60", "agreement_review_30"]
    agreement: str
    version: int
    review_by: date
    days_left: int = Field(description="Days until the review_by (the day it stops deciding).")
    detail: str


class Worklist(BaseModel):
    """What the network's protocol says is due, the longest overdue first; no case data."""

    network: str
    items: list[WorklistItem]
    agreements: list[AgreementReviewItem] = Field(
        default_factory=list,
        description="Agreements in force deciding the network that reach their review_by within 60 days "
                    "(on the first page only).")
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last.")


# Granted through their own endpoints (GET /v1/referrals/{id}/assessments, …/minutes, …/actions),
# never in the referral.
HISTORY_FIELDS = frozenset({"assessments", "minutes", "actions"})


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
    risk_assessment: dict[str, Any] | None = Field(
        default=None, description="referral/v2: the risk (re-)assessment, as posted; null on a v1 referral.")
    interventions: list[dict[str, Any]] | None = Field(
        default=None, description="referral/v2: the interventions, as posted; empty on a v1 referral.")
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
        description="Target status (`referral_status` vocabulary).",
        json_schema_extra={"x-vocabulary": "referral_status"},
    )
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    agencies: Annotated[list[AgencyId], Field(max_length=20)] = Field(
        default_factory=list, description="For `assigned`: the receiving agencies."
    )
    outcome: CodeStr | None = coded("closure_outcome", "Required for `closed`.", default=None)
    to_network: Text200 | None = Field(default=None, description="For `transferred`: the network.")


class EventOut(BaseModel):
    id: str
    kind: Literal["status", "emergency_access", "emergency_revoked", "triage_overdue", "assignment_overdue",
                  "review_due", "repeat_referral", "action_overdue"] = Field(
        "status",
        description="`status`: a lifecycle step. `emergency_access` / `emergency_revoked`: an agency broke the"
        " glass on the referral / an auditor revoked that grant; shown only to the referral's owner agency"
        " and its network's coordinator. The others: the network's clock found it due (overdue triage or"
        " assignment, a review after closure, a repeat referral, an action open past its due date); shown"
        " only to the network's coordinator.",
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
    due_since: datetime | None = Field(None, description="Clock entries: when it fell due.")


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


def referral_field_paths() -> frozenset[str]:
    """Every field path a view may name: top-level fields and subject.* fields."""
    top = {f.alias or name for name, f in ReferralOut.model_fields.items() if name != "subject"}
    subject = {f"subject.{name}" for name in SubjectOut.model_fields}
    return frozenset(top | subject | HISTORY_FIELDS)


SPECIAL_CATEGORY_FIELDS = frozenset({"subject.ethnicity", "subject.religion"})
DIRECT_IDENTIFIERS = frozenset({
    "subject.given_name", "subject.family_name", "subject.date_of_birth", "subject.phone",
    "subject.email", "subject.address", "subject.identifiers",
})
# Fields inside the sealed identity document.
IDENTITY_FIELDS = ("given_name", "family_name", "date_of_birth", "gender", "phone", "email",
                   "address", "identifiers", "ethnicity", "religion", "language")
