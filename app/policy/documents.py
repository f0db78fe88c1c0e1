"""Pydantic models of an agreement file as written in YAML (shape only, no cross-checks)."""

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StringConstraints,
    Tag,
    model_validator,
)

from app.policy.duration import (
    DURATION_PATTERN,
    RETENTION_PATTERN,
    parse_duration,
    parse_retention,
)
from app.policy.vocabulary import (
    EmergencyRelation,
    LegalBasis,
    Relation,
    Role,
    Sector,
    SpecialCategoryCondition,
)

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
VIEW_NAME_PATTERN = (
    r"^(referral\.[a-z0-9][a-z0-9_-]*|notes\.[a-z0-9][a-z0-9_-]*"
    r"|statistics(\.[a-z0-9][a-z0-9_-]*)?)$"
)

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
ViewName = Annotated[str, StringConstraints(pattern=VIEW_NAME_PATTERN)]
FieldPath = Annotated[
    str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*(\.([a-z_][a-z0-9_]*|\*))*$")
]


def _check_retention(text: str) -> str:
    parse_retention(text)
    return text


def _check_duration(text: str) -> str:
    if parse_duration(text).is_zero:
        raise ValueError(f"bad duration {text!r}: must be longer than zero")
    return text


RetentionText = Annotated[
    str,
    AfterValidator(_check_retention),
    Field(
        description="ISO 8601 duration, optionally counted from case closure.",
        examples=["P90D", "P6Y after closed"],
        json_schema_extra={"pattern": RETENTION_PATTERN},
    ),
]
DurationText = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(examples=["PT3H"], json_schema_extra={"pattern": DURATION_PATTERN}),
]

# Pydantic puts a union member's tag in an error's location; these are skipped
# when the location is mapped back onto the YAML file.
VIEW_SHAPE_TAGS = frozenset(
    {"field list", "composed view", "notes view", "statistics view", "view name"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudienceDocument(_Strict):
    """`to`: every key given must match (AND); any value within a list may (OR)."""

    roles: list[Role] | None = None
    sectors: list[Sector] | None = None
    agencies: list[Slug] | None = None
    relation: Relation | list[Relation] | None = None


class ConditionsDocument(_Strict):
    """`when`: conditions on the record, each a list of allowed values (`invited`: a boolean).

    `concerns` holds when the referral has at least one of the concerns listed.
    `invited: true` holds only on a read through a meeting's agenda item the caller's agency
    is invited to, while the meeting is open; every other read is `invited: false`.
    """

    consent: list[str] | None = None
    status: list[str] | None = None
    risk_level: list[str] | None = None
    classification: list[str] | None = None
    intervention_type: list[str] | None = None
    urgency: list[str] | None = None
    concerns: list[str] | None = None
    # Strict: `invited: "yes"` or `invited: 1` is a mistake to refuse, not a truth to guess.
    invited: StrictBool | None = None


class NoteFilter(_Strict):
    classification: Annotated[list[Slug], Field(min_length=1)]


class NotesViewDocument(_Strict):
    """`notes.<name>`: the note classifications the view discloses."""

    notes: NoteFilter


class StatisticsViewDocument(_Strict):
    """`statistics[.<name>]`: aggregate counts by dimensions, small cells suppressed."""

    aggregate: Annotated[list[str], Field(min_length=1)]
    min_cell: Annotated[int, Field(ge=1)] | None = None


class ComposedViewDocument(_Strict):
    """`referral.<name>` built from other referral views plus and minus fields."""

    include: list[ViewName] = []
    fields: list[FieldPath] = []
    exclude: list[FieldPath] = []


def _view_shape(value: Any) -> str | None:
    if isinstance(value, list):
        return "field list"
    if isinstance(value, dict):
        if "notes" in value:
            return "notes view"
        if "aggregate" in value:
            return "statistics view"
        return "composed view"
    if isinstance(value, BaseModel):
        return {
            NotesViewDocument: "notes view",
            StatisticsViewDocument: "statistics view",
            ComposedViewDocument: "composed view",
        }.get(type(value))
    return None


def _deny_view_shape(value: Any) -> str | None:
    if isinstance(value, str):
        return "view name"
    if isinstance(value, NotesViewDocument | dict):
        return "notes view"
    if isinstance(value, list):
        return "field list"
    return None


ViewDocument = Annotated[
    Annotated[list[FieldPath], Tag("field list")]
    | Annotated[ComposedViewDocument, Tag("composed view")]
    | Annotated[NotesViewDocument, Tag("notes view")]
    | Annotated[StatisticsViewDocument, Tag("statistics view")],
    Discriminator(
        _view_shape,
        custom_error_type="view_shape",
        custom_error_message=(
            "a view is a field list, {include, fields, exclude},"
            " {notes: {classification: [...]}} or {aggregate: [...], min_cell: N}"
        ),
    ),
]
DenyViewDocument = Annotated[
    Annotated[ViewName, Tag("view name")]
    | Annotated[NotesViewDocument, Tag("notes view")]
    | Annotated[list[FieldPath], Tag("field list")],
    Discriminator(
        _deny_view_shape,
        custom_error_type="deny_view_shape",
        custom_error_message=(
            "a deny view is a view name, a field list or {notes: {classification: [...]}}"
        ),
    ),
]


class RequiresDocument(_Strict):
    """`requires`: what every recipient must hold before anything is disclosed to them."""

    training: Annotated[
        list[Slug],
        Field(
            min_length=1,
            description="Course ids (training records) every recipient must have completed and not expired.",
        ),
    ]


class SignatoryDocument(_Strict):
    """A person who signs the agreement for a party (the person's id as a console person or API client)."""

    agency: Slug
    person: Annotated[str, Field(min_length=1, max_length=64)]


class PermitDocument(_Strict):
    """A permit: who receives which view, for which purposes, on what legal basis."""

    id: Slug
    to: AudienceDocument
    view: ViewName
    purposes: Annotated[list[Slug], Field(min_length=1)]
    when: ConditionsDocument | None = None
    legal_basis: LegalBasis
    special_category_condition: SpecialCategoryCondition | None = None
    retention: RetentionText
    requires: Annotated[
        RequiresDocument | None,
        Field(description="Courses this rule's recipients need besides the agreement's own `requires`."),
    ] = None
    description: str | None = None


class DenyDocument(_Strict):
    """A deny: beats every permit it overlaps; `to` omitted means every party."""

    id: Slug
    to: AudienceDocument = AudienceDocument()
    view: DenyViewDocument
    purposes: list[Slug] | None = None
    when: ConditionsDocument | None = None
    description: str | None = None


class ReasonRuleDocument(_Strict):
    """`emergency.reason`: what makes a reason one of substance (every rule must hold)."""

    min_length: Annotated[
        int, Field(ge=1, le=2000, description="Characters, after trimming and collapsing spaces.")
    ] = 40
    min_words: Annotated[
        int,
        Field(ge=0, le=50, description="Distinct words of 3+ letters, not one letter repeated, not filler."),
    ] = 6
    max_char_share: Annotated[
        float,
        Field(gt=0, le=1, description="No one character may make up more than this share of the reason."),
    ] = 0.25


class EmergencyDocument(_Strict):
    """Break-glass access when there is a risk to life (purpose `emergency`), with its guardrails."""

    roles: Annotated[
        list[Role] | None, Field(min_length=1, description="Who may ask, by role (default: any role).")
    ] = None
    sectors: Annotated[
        list[Sector] | None, Field(min_length=1, description="Who may ask, by sector (default: any sector).")
    ] = None
    relations: Annotated[
        list[EmergencyRelation],
        Field(
            min_length=1,
            description="Who may ask, by relation to the referral: agencies already party to the case"
            " (owner, referrer, assigned) or the network's coordinator (coordinator).",
        ),
    ] = ["owner", "referrer", "assigned", "coordinator"]
    view: ViewName
    duration: DurationText = "PT3H"
    legal_basis: LegalBasis = "vital_interests"
    special_category_condition: SpecialCategoryCondition = "vital_interests"
    retention: RetentionText = "P1Y"
    reason: ReasonRuleDocument = ReasonRuleDocument()
    excluded_statuses: Annotated[
        list[str], Field(description="Referral statuses on which nobody may break the glass.")
    ] = ["closed", "withdrawn"]
    max_per_agency_per_day: Annotated[
        int, Field(ge=1, le=1000, description="Grants an agency may receive in any 24 hours.")
    ] = 3
    refuse_flagged: Annotated[
        bool,
        Field(description="Refuse agencies flagged by an `unjustified` finding until an auditor clears them."),
    ] = True


class StatisticsSettings(_Strict):
    """Floor for small-cell suppression and the dimensions statistics may use."""

    min_cell: Annotated[int, Field(ge=1)] = 5
    dimensions: list[str] | None = None


class AgreementDocument(_Strict):
    """A machine-readable information-sharing agreement."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="CaseBridge information-sharing agreement",
    )

    agreement: Slug
    network: Annotated[
        Slug | None,
        Field(description="The network whose records this agreement decides (default: the agreement id)."),
    ] = None
    networks: Annotated[
        list[Slug] | None,
        Field(
            min_length=1,
            description="A national agreement across several networks: statistics views only.",
        ),
    ] = None
    version: Annotated[int, Field(ge=1)]
    title: Annotated[str, Field(min_length=1)]
    effective_from: date
    review_by: date
    controller_contact: Annotated[str, Field(min_length=1)]
    parties: Annotated[list[Slug], Field(min_length=1)]
    purposes: Annotated[dict[Slug, str], Field(min_length=1)]
    views: dict[ViewName, ViewDocument]
    rules: list[PermitDocument] = []
    deny: list[DenyDocument] = []
    emergency: EmergencyDocument | None = None
    statistics: StatisticsSettings = StatisticsSettings()
    requires: Annotated[
        RequiresDocument | None,
        Field(description="Courses every recipient of every permit (emergency included) must hold."),
    ] = None
    signatories: Annotated[
        list[SignatoryDocument] | None,
        Field(
            min_length=1,
            description="The people whose signatures put a version in force (default: a coordinator or"
            " signatory of every party).",
        ),
    ] = None
    description: str | None = None


def _check_urgency(code: str) -> str:
    from app.vocabularies.catalog import vocabularies

    known = [c.code for c in vocabularies()["urgency"].codes]
    if code not in known:
        raise ValueError(f"unknown urgency {code!r}: the urgencies are {', '.join(known)}")
    return code


def _check_action_statuses(statuses: list[str]) -> list[str]:
    missing = [s for s in REQUIRED_ACTION_STATUSES if s not in statuses]
    if missing:
        raise ValueError(f"action statuses must include {', '.join(REQUIRED_ACTION_STATUSES)} (missing: "
                         f"{', '.join(missing)})")
    if len(set(statuses)) != len(statuses):
        raise ValueError("action statuses must not repeat")
    if "overdue" in statuses:
        raise ValueError("'overdue' is not a status: the clock marks an open action overdue past its due date")
    return statuses


UrgencyCode = Annotated[str, AfterValidator(_check_urgency)]
REQUIRED_ACTION_STATUSES = ("open", "done")
PROTOCOL_DEFAULTS: dict[str, Any] = {
    "cadence": "P1M",
    "triage": {"immediate": "PT24H", "urgent": "P2D", "priority": "P5D", "routine": "P14D"},
    "assign": {"immediate": "P2D", "urgent": "P5D", "priority": "P10D", "routine": "P30D"},
    "reviews_after_closure": ["P6M", "P12M"],
    "repeat_referral_window": "P12M",
    "action_statuses": ["open", "done", "cancelled"],
    "reassessment_by": ["coordinator", "owner"],
}


class MeetingsDocument(_Strict):
    """How often the panel meets, and who chairs it."""

    cadence: Annotated[DurationText, Field(description="Time between regular meetings.")] = PROTOCOL_DEFAULTS["cadence"]
    chair: Annotated[Slug | None, Field(description="The chairing agency, a member; default: the coordinator.")] = None


class DeadlinesDocument(_Strict):
    """Time allowed, by urgency: from submission to triage, and from acceptance to assignment."""

    triage: dict[UrgencyCode, DurationText] = PROTOCOL_DEFAULTS["triage"]
    assign: dict[UrgencyCode, DurationText] = PROTOCOL_DEFAULTS["assign"]


class ProtocolDocument(_Strict):
    """How a network works its cases: meetings, deadlines, reviews, repeat referrals, actions."""

    meetings: MeetingsDocument = MeetingsDocument()
    deadlines: DeadlinesDocument = DeadlinesDocument()
    reviews_after_closure: Annotated[
        list[DurationText], Field(description="Review points after a case closes.")
    ] = PROTOCOL_DEFAULTS["reviews_after_closure"]
    repeat_referral_window: Annotated[
        DurationText, Field(description="A new referral about a person referred this recently is a repeat.")
    ] = PROTOCOL_DEFAULTS["repeat_referral_window"]
    action_statuses: Annotated[list[Slug], AfterValidator(_check_action_statuses)] = (
        PROTOCOL_DEFAULTS["action_statuses"]
    )
    reassessment_by: Annotated[
        list[EmergencyRelation], Field(min_length=1, description="Who may re-assess a referral: its "
                                                                 "owner, referrer, assigned agencies, coordinator.")
    ] = PROTOCOL_DEFAULTS["reassessment_by"]


ContactText = Annotated[str, Field(min_length=1, max_length=300, description="E-mail, telephone or postal.")]
TransferSafeguard = Literal[
    "adequacy_decision",  # Art. 45
    "legally_binding_instrument",  # Art. 46(2)(a): between public authorities
    "standard_contractual_clauses",  # Art. 46(2)(c)
    "binding_corporate_rules",  # Art. 47
    "approved_code_of_conduct",  # Art. 46(2)(e)
    "approved_certification",  # Art. 46(2)(f)
    "administrative_arrangement",  # Art. 46(3)(b)
    "derogation",  # Art. 49
]


class ContactDocument(_Strict):
    """A named party and how to reach it (GDPR Art. 30(1)(a))."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    address: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    contact: ContactText


class JointControllerDocument(ContactDocument):
    """A member agency deciding purposes and means together with the controller (Art. 26)."""

    agency: Slug


class TransferDocument(_Strict):
    """Personal data sent outside the EEA (Art. 30(1)(e)): to whom, where, under which safeguard."""

    recipient: Annotated[str, Field(min_length=1, max_length=200)]
    country_code: Annotated[
        str | None,
        Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2; none for an international organisation."),
    ] = None
    international_organisation: bool = False
    safeguard: TransferSafeguard
    description: str | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> "TransferDocument":
        if (self.country_code is None) == (not self.international_organisation):
            raise ValueError("a transfer names either a country_code or `international_organisation: true`")
        return self


LocaleCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
# A file below the networks folder: no absolute path, no "." or ".." segment (each starts with no dot).
ConductFile = Annotated[str, StringConstraints(
    pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.(md|txt)$")]


class ConductDocument(_Strict):
    """The network's code of conduct: each person accepts its current version before seeing case data."""

    version: Annotated[int, Field(ge=1, description="Raised for every change people must accept again.")]
    text: Annotated[dict[LocaleCode, ConductFile], Field(
        min_length=1, description="The text by language: a Markdown file, relative to the networks folder.")]


class NetworkDocument(_Strict):
    """A prevention network: a city's CAT or LPN, a county forum."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="CaseBridge network")

    network: Slug
    name: Annotated[str, Field(min_length=1)]
    locales: Annotated[list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]],
                       Field(min_length=1)] = ["en"]
    coordinator: Annotated[Slug, Field(description="The coordinator agency (the focal point).")]
    members: list[Slug] = []
    description: str | None = None
    training: Annotated[bool, Field(
        description="A training network (`casebridge training-network create`): synthetic people and cases, "
                    "marked training everywhere, isolated from every real network.")] = False
    protocol: Annotated[ProtocolDocument, Field(description="How the network works its cases; "
                                                            "each part left out takes its default.")] = (
        ProtocolDocument()
    )
    code_of_conduct: Annotated[ConductDocument | None, Field(
        description="The code every person of a member agency accepts at sign-in.")] = None
    # The record of processing's accountability part (Art. 30(1)(a), (e)); `policy ropa` lists what is missing.
    controller: Annotated[ContactDocument | None, Field(description="The controller: usually the coordinator.")] = None
    joint_controllers: list[JointControllerDocument] = []
    representative: Annotated[
        ContactDocument | None, Field(description="The controller's representative in the EU (Art. 27), if any.")
    ] = None
    dpo: Annotated[ContactDocument | None, Field(description="The data-protection officer (Art. 37).")] = None
    transfers: Annotated[
        Literal["none"] | list[TransferDocument] | None,
        Field(description="`none`, or each transfer to a third country or international organisation."),
    ] = None
