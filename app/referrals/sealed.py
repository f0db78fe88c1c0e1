"""A referral's free text, sealed with its subject's data key: erasing the key shreds it.

Who referred (`referring_person`), who recorded consent (`consent.recorded_by`), why a status
changed (`reason`) and who changed it (`by_person`) are typed by people and often name people.
Each is sealed like the narrative: AES-256-GCM under the subject's data key, with the row's
identity in the associated data, so a ciphertext moved to another row or person fails to open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.crypto.aead import DecryptionError
from app.crypto.envelope import DataKey, Envelope
from app.errors import IntegrityFailure
from app.subjects import service as subjects

if TYPE_CHECKING:
    from app.referrals.snapshot import AnySubject

REFERRING_PERSON = "referral.referring_person"
CONSENT_RECORDED_BY = "referral.consent.recorded_by"
STEP_REASON = "referral.status_change.reason"
STEP_BY_PERSON = "referral.status_change.by_person"
ASSESSMENT_REASON = "referral.assessment.reason"
ASSESSMENT_BY = "referral.assessment.assessed_by"


def on_referral(field: str, referral_id: str) -> str:
    """The associated-data context of a referral's own sealed field."""
    return f"{field}:{referral_id}"


def on_step(field: str, referral_id: str, step_id: int) -> str:
    """The context of a status change's sealed field: the referral and the step's row id."""
    return f"{field}:{referral_id}:{step_id}"


def seal(key: DataKey, text: str | None, context: str) -> bytes | None:
    return None if text is None else key.seal(text.encode(), context)


class Opener:
    """Opens one subject's sealed text; the key is unwrapped once, and only if something is opened.

    A subject whose key was destroyed (erasure, crypto-shredding) has no text left to show:
    every value opens as None.
    """

    def __init__(self, envelope: Envelope, subject: AnySubject, key: DataKey | None = None) -> None:
        self._envelope, self._subject = envelope, subject
        self._key: DataKey | None = key  # given when the caller has unwrapped it already

    def _data_key(self) -> DataKey | None:
        if self._subject.wrapped_key is None or self._subject.kek_id is None:
            return None
        return self.key()

    def key(self) -> DataKey:
        """The subject's data key, unwrapped on first use (raises as `subjects.data_key` does)."""
        if self._key is None:
            self._key = subjects.data_key(self._envelope, self._subject)
        return self._key

    def text(self, sealed: bytes | None, context: str) -> str | None:
        if sealed is None:
            return None
        key = self._data_key()
        if key is None:
            return None
        try:
            return key.open(sealed, context).decode()
        except DecryptionError:
            raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None
