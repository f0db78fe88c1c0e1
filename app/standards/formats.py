"""The string formats of the published schemas, as regular expressions the API and the schema share.

Each pattern is written in the subset that ECMA-262 (JSON Schema), Python's `re` (jsonschema,
hypothesis) and Rust's `regex` (pydantic) read alike: explicit `\\uXXXX` classes instead of `\\s`
or `\\d` (whose meaning differs between them), no look-around. The API validates with the very
pattern the schema publishes, so a body is valid for one exactly when it is valid for the other.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Final

# C0 controls other than TAB, LF and CR: refused in every JSON string by app/edges.py.
_CONTROL: Final = r"\u0000-\u0008\u000b\u000c\u000e-\u001f"
# White space by any of the three engines or Python's str.strip, less the C0 controls (refused anyway).
_SPACE: Final = r"\u0009\u000a\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NO_CONTROL: Final = f"^[^{_CONTROL}]*$"
"""Any text without control characters (TAB, LF and CR are text)."""
_WIDE_SPACE: Final = r"\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NON_BLANK: Final = f"^[{_SPACE}]*[^\\u0000-\\u0020{_WIDE_SPACE}][^{_CONTROL}]*$"
"""Text: no control characters, and a character that is not white space (`"  "` or a lone tab is no text).

Written so that only one reading matches (leading white space, the first visible character, the
rest): linear to check in a backtracking engine too.
"""

# RFC 5646 language tags (well-formed, not checked against the registry): language with
# extlangs or a 5–8 letter subtag, optional script, region, variants, extensions, private use.
_ALNUM: Final = "[A-Za-z0-9]"
LANGUAGE_TAG: Final = (
    "^(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{5,8})"
    "(?:-[A-Za-z]{4})?"
    "(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    f"(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*"
    f"(?:-[0-9A-WY-Za-wy-z](?:-{_ALNUM}{{2,8}})+)*"
    f"(?:-[Xx](?:-{_ALNUM}{{1,8}})+)?"
    f"|[Xx](?:-{_ALNUM}{{1,8}})+)$"
)

# An address as mail systems take it: dot-atom local part, a domain of two or more labels.
_ATEXT: Final = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL: Final = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL: Final = f"^{_ATEXT}+(?:\\.{_ATEXT}+)*@{_LABEL}(?:\\.{_LABEL})+$"

_MONTH_DAY: Final = (
    "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_TIME: Final = "[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
_OFFSET: Final = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
FIRST_YEAR: Final = 1900
LAST_TIMESTAMP_YEAR: Final = 9998  # any offset still converts to UTC within Python's range


def _digits_range(low: str, high: str) -> str:
    """A regex for the fixed-width decimal strings from `low` to `high` (same width)."""
    if low == high:
        return low
    if len(low) == 1:
        return f"[{low}-{high}]"
    head_low, head_high = low[0], high[0]
    rest = len(low) - 1
    if head_low == head_high:
        return head_low + _group(_digits_range(low[1:], high[1:]))
    parts = [head_low + _group(_digits_range(low[1:], "9" * rest))]
    if int(head_high) - int(head_low) > 1:
        middle = f"[{int(head_low) + 1}-{int(head_high) - 1}]"
        parts.append(middle + "[0-9]" * rest)
    parts.append(head_high + _group(_digits_range("0" * rest, high[1:])))
    return "|".join(parts)


def _group(pattern: str) -> str:
    return f"(?:{pattern})" if "|" in pattern else pattern


def _leap_years(first: int, last: int) -> str:
    """The leap years from `first` to `last`: whole centuries by the Gregorian rule, the rest listed."""
    full = [c for c in range(first // 100, last // 100 + 1) if c * 100 >= first and c * 100 + 99 <= last]
    parts = []
    every_fourth = "(?:0[48]|[2468][048]|[13579][26])"
    if full:
        parts.append(f"(?:{'|'.join(f'{c:02d}' for c in full)}){every_fourth}")
        quadricentennial = [c for c in full if c % 4 == 0]
        if quadricentennial:
            parts.append(f"(?:{'|'.join(f'{c:02d}' for c in quadricentennial)})00")
    in_full = {c for c in full}
    parts += [f"{y:04d}" for y in range(first, last + 1)
              if y // 100 not in in_full and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)]
    return "|".join(parts)


def calendar_date(first: int, last: int) -> str:
    """A full-date (RFC 3339 `YYYY-MM-DD`) that exists, in the years `first`..`last`, unanchored."""
    years = _digits_range(f"{first:04d}", f"{last:04d}")
    return f"(?:(?:{years})-{_MONTH_DAY}|(?:{_leap_years(first, last)})-02-29)"


def birth_date_pattern(today: date) -> str:
    """A birth date: a real date from 1900-01-01 to the end of this year (not after today: server-side)."""
    return f"^{calendar_date(FIRST_YEAR, today.year)}$"


def _leap_ok(value: str) -> bool:
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


TIMESTAMP: Final = f"^{calendar_date(FIRST_YEAR, LAST_TIMESTAMP_YEAR)}{_TIME}{_OFFSET}$"
"""An RFC 3339 date-time with its offset (a time zone is required), years 1900–9998."""
DATE: Final = f"^{calendar_date(FIRST_YEAR, LAST_TIMESTAMP_YEAR)}$"
"""An RFC 3339 full-date that exists, years 1900–9998 (for dates that are not birth dates)."""


def parse_date(value: object, pattern: str) -> date:
    """A date only from its RFC 3339 text (never a datetime, a number or another layout)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = value.isoformat()  # a Python caller's date is checked like its text
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None or not _leap_ok(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return date.fromisoformat(value)


def parse_timestamp(value: object) -> datetime:
    """A timestamp only from RFC 3339 text with a time zone; returned in UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must have a time zone")
        value = value.isoformat()
    if not isinstance(value, str) or re.fullmatch(TIMESTAMP, value) is None:
        raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. 2026-01-31T09:30:00Z")
    text = value.upper()
    if "." in text:  # Python keeps microseconds: a longer fraction is cut, not refused
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
