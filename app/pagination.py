"""Opaque cursors for keyset pagination: every list is {"items": [...], "next_cursor": ...}."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated, Any

from fastapi import Query
from pydantic import BeforeValidator

from app.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page.")]


_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?$"
)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _written_as(pattern: re.Pattern[str], example: str) -> BeforeValidator:
    def check(value: object) -> object:
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise ValueError(f"must be written like {example}")
        return value

    return BeforeValidator(check)


# Query times as the document says (ISO 8601): pydantic alone also takes `0.5` as a Unix time.
ISO_TIMESTAMP = _written_as(_TIMESTAMP, "2026-01-15T09:30:00Z")
ISO_DATE = _written_as(_DATE, "2026-01-15")


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor") from None
    if not isinstance(position, dict):
        raise BadRequest("The cursor is not one this service issued.", slug="invalid-cursor")
    return position
