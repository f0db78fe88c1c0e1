"""Every table, imported in one place so metadata (and Alembic) sees them all."""

from app.agencies.models import Agency, ApiClient
from app.agreements.models import AgreementSignature, AgreementVersion
from app.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditNode
from app.conduct.models import ConductAcceptance
from app.console.models import ConsoleSession, Person
from app.emergency.models import AgencyFlag, EmergencyGrant, EmergencyNotice
from app.idempotency import IdempotencyRecord
from app.meetings.models import AgendaItem, CaseAction, ClockNotice, Meeting, MinutesEntry
from app.notes.models import Note
from app.partners.models import PartnerDisclosure
from app.referrals.models import Assessment, Assignment, Referral, ReferralConcern, StatusChange
from app.retention.models import JobLease, LegalHold, ServiceMarker, Tombstone
from app.subjects.models import Subject, SubjectIdentifier
from app.training.models import TrainingRecord
from app.vocabularies.models import CodeMapping

__all__ = [
    "Agency", "AgencyFlag", "AgendaItem", "AgreementSignature", "AgreementVersion",
    "ApiClient", "Assessment", "Assignment", "AuditCheckpoint", "AuditEntry",
    "AuditHead", "AuditNode", "CaseAction", "ClockNotice", "CodeMapping", "ConductAcceptance",
    "ConsoleSession", "EmergencyGrant",
    "EmergencyNotice", "IdempotencyRecord", "JobLease", "LegalHold", "Meeting", "MinutesEntry", "Note",
    "PartnerDisclosure", "Person", "Referral", "ReferralConcern", "ServiceMarker", "StatusChange", "Subject",
    "SubjectIdentifier", "Tombstone", "TrainingRecord",
]
