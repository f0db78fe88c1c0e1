"""Each referral's own part about its subject: sealed per referral, the only source of its subject.* fields.

A referral about a known person links to that person's subject (the shared `subject.id`), but
it renders only what it submitted itself: another agency's names, birth date, address or
special-category data never reach it through the link. The part is sealed under the person's
data key (erasure shreds it with everything else) and bound to the referral's id, so it cannot
be moved to another referral; age band and district are kept in clear beside it, per referral,
for views and statistics.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.crypto.aead import DecryptionError
from app.crypto.envelope import DataKey, Envelope
from app.errors import IntegrityFailure
from app.referrals.models import Referral
from app.referrals.schemas import SubjectIn
from app.subjects import service as subjects
from app.vocabularies.catalog import age_band_for

if TYPE_CHECKING:
    from app.referrals.snapshot import AnyReferral, AnySubject

SUBMISSION_CONTEXT = "referral.subject"


def context(referral_id: str) -> str:
    return f"{SUBMISSION_CONTEXT}:{referral_id}"


def attach(referral: Referral, key: DataKey, conflicts: tuple[str, ...], data: SubjectIn, now: datetime) -> None:
    """Record on the new referral what it said about its subject (sealed with `key`), and any link conflict."""
    referral.subject_submission = seal(key, referral.id, subjects.identity_document(data))
    referral.subject_age_band = age_band_for(data.date_of_birth, now.date()) if data.date_of_birth else None
    referral.subject_district = data.district
    referral.link_conflicts = list(conflicts) or None


def seal(key: DataKey, referral_id: str, part: dict[str, Any]) -> bytes:
    return key.seal(json.dumps(part).encode(), context(referral_id))


def read(
    envelope: Envelope, referral: AnyReferral, subject: AnySubject, *, key: DataKey | None = None
) -> dict[str, Any]:
    """What this referral submitted about its subject (410 once the person is erased).

    `key`: the subject's data key when the caller has already unwrapped it.
    """
    key = key if key is not None else subjects.data_key(envelope, subject)
    try:
        if referral.subject_submission is None:
            # Every referral has one (migration 0009 gave the older ones theirs). Never fall back
            # to the merged identity: it holds what other agencies said.
            raise DecryptionError
        raw = key.open(referral.subject_submission, context(referral.id))
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None
    part: dict[str, Any] = json.loads(raw)
    return part
