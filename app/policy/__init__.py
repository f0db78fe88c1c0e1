"""Information-sharing agreements as code: load, decide, explain, lint, test, report."""

from app.policy.decision import Caller, Decision, Record
from app.policy.diff import AgreementDiff, diff_agreements
from app.policy.duration import Duration, Retention, parse_duration, parse_retention
from app.policy.engine import decide, find_view, purposes_for
from app.policy.explain import Explanation, RuleTrace, explain
from app.policy.fields import REFERRAL_FIELDS
from app.policy.lint import Finding, check
from app.policy.loader import AgreementError, LoadResult, load_agreements, parse_agreement
from app.policy.model import Agreement, Audience, Deny, Permit, View
from app.policy.policy_set import PolicySet
from app.policy.policy_tests import CaseFailure, TestReport, run_policy_tests
from app.policy.project import project
from app.policy.prove import ProofReport, prove
from app.policy.ropa import ropa, ropa_markdown
from app.policy.schema_export import agreement_json_schema
from app.policy.store import PolicyStore
from app.policy.who import Receiver, Recipient, UnknownName, receivers, who_can

__all__ = [
    "REFERRAL_FIELDS",
    "Agreement",
    "AgreementDiff",
    "AgreementError",
    "Audience",
    "Caller",
    "CaseFailure",
    "Decision",
    "Deny",
    "Duration",
    "Explanation",
    "Finding",
    "LoadResult",
    "Permit",
    "PolicySet",
    "PolicyStore",
    "ProofReport",
    "Receiver",
    "Recipient",
    "Record",
    "Retention",
    "RuleTrace",
    "TestReport",
    "UnknownName",
    "View",
    "agreement_json_schema",
    "check",
    "decide",
    "diff_agreements",
    "explain",
    "find_view",
    "load_agreements",
    "parse_agreement",
    "parse_duration",
    "parse_retention",
    "project",
    "prove",
    "purposes_for",
    "receivers",
    "ropa",
    "ropa_markdown",
    "run_policy_tests",
    "who_can",
]
