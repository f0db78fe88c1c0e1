"""referral/v2's sections (risk assessment, interventions), sealed together with the subject's data key.

They are case data like the narrative: assessments name risk factors, interventions name providers
and outcomes in words. One JSON document per referral, AES-256-GCM under the person's key with the
referral's id in the associated data, so erasing the person shreds them and a ciphertext moved to
another referral fails to open. A v1 referral has none (NULL).
"""

from __future__ import annotations

import json
from typing import Any

from app.crypto.aead import DecryptionError
from app.crypto.envelope import DataKey
from app.errors import IntegrityFailure
from app.referrals.schemas import V2_SECTIONS, ReferralIn

SECTIONS_CONTEXT = "referral.sections"


def context(referral_id: str) -> str:
    return f"{SECTIONS_CONTEXT}:{referral_id}"


def of(data: ReferralIn) -> dict[str, Any] | None:
    """The v2 sections of a validated body as they are stored (None for a v1 body)."""
    present = {name: getattr(data, name) for name in V2_SECTIONS if hasattr(data, name)}
    if not present:
        return None
    dumped: dict[str, Any] = {}
    for name, value in present.items():
        if isinstance(value, list):
            dumped[name] = [item.model_dump(mode="json", exclude_none=True) for item in value]
        else:
            dumped[name] = None if value is None else value.model_dump(mode="json", exclude_none=True)
    return dumped


def seal(key: DataKey, referral_id: str, sections: dict[str, Any] | None) -> bytes | None:
    return None if sections is None else key.seal(json.dumps(sections).encode(), context(referral_id))


def open_sections(key: DataKey, referral_id: str, sealed: bytes | None) -> dict[str, Any]:
    """The stored sections; a v1 referral's are empty (null assessment, no interventions)."""
    if sealed is None:
        return {"risk_assessment": None, "interventions": []}
    try:
        opened: dict[str, Any] = json.loads(key.open(sealed, context(referral_id)))
    except DecryptionError:
        raise IntegrityFailure("A stored record failed its integrity check; nothing was disclosed.") from None
    return {"risk_assessment": opened.get("risk_assessment"), "interventions": opened.get("interventions", [])}
