"""The console's languages: catalogs (gettext .po, read at start), negotiation, dates and numbers.

Every label and message on a page comes from ``locales/<lang>/LC_MESSAGES/console.po``; English is
the source language. ``tests/console/test_catalogs.py`` holds every marked string to an Arabic
translation.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "console"
LANGUAGES = ("en", "ar", "mk", "sq")
"""Offered languages, the source language first."""
RTL = frozenset({"ar"})
DEFAULT = "en"


@cache
def translations(language: str) -> NullTranslations:
    """The catalog of one language, compiled in memory from its .po (English: the source strings)."""
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT or not path.exists():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The person's choice if offered, else the best of ``Accept-Language`` (q-values honoured), else English."""
    if chosen in LANGUAGES:
        return chosen
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            wanted.append((-quality, position, tag.strip().lower()))
    for quality, _, tag in sorted(wanted):
        if quality >= 0:
            continue
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT


def direction(language: str) -> str:
    return "rtl" if language in RTL else "ltr"


def language_name(language: str) -> str:
    """A language's own name for itself (العربية, English, македонски, shqip)."""
    return Locale.parse(language).get_display_name(language) or language


def when(value: datetime | date | str | None, language: str) -> str:
    """A date or time in the language's format; ISO strings from the API are parsed first."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return text
    if isinstance(value, datetime):
        return format_datetime(value, format="medium", locale=language, tzinfo=None)
    return format_date(value, format="medium", locale=language)
