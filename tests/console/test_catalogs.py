"""Every string of the console has an Arabic translation; no translation drops a placeholder."""

from __future__ import annotations

import re

import pytest

from app.console import catalogs, i18n

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_every_console_string_has_an_arabic_translation() -> None:
    extracted = [m for m in catalogs.extract() if m.id]
    assert len(extracted) > 100  # the extraction found the templates and the Python labels
    assert catalogs.missing("ar") == []


@pytest.mark.parametrize("language", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT])
def test_translations_keep_every_placeholder(language: str) -> None:
    for message in catalogs.read(language):
        if not message.id or not message.string or isinstance(message.id, tuple):
            continue
        assert set(PLACEHOLDER.findall(str(message.string))) == set(PLACEHOLDER.findall(str(message.id))), message.id


def test_the_catalogs_hold_the_extracted_strings() -> None:
    """`python -m app.console.catalogs update` was run after the last string changed."""
    extracted = {str(m.id) for m in catalogs.extract() if m.id}
    for language in ("ar", "mk", "sq"):
        held = {str(m.id) for m in catalogs.read(language) if m.id}
        assert extracted <= held, (language, sorted(extracted - held)[:10])


def test_negotiation_follows_the_choice_then_accept_language() -> None:
    assert i18n.negotiate("ar", "en-GB,en;q=0.9") == "ar"
    assert i18n.negotiate(None, "fr-FR, ar;q=0.8, en;q=0.5") == "ar"
    assert i18n.negotiate(None, "mk-MK") == "mk"
    assert i18n.negotiate(None, "sq;q=0, en;q=0.1") == "en"
    assert i18n.negotiate(None, "de, fr") == "en"
    assert i18n.negotiate("xx", None) == "en"


def test_dates_follow_the_language() -> None:
    assert i18n.when("2026-12-04", "en") == "Dec 4, 2026"
    arabic = i18n.when("2026-12-04", "ar")
    assert "2026" in arabic or "٢٠٢٦" in arabic
    assert arabic != i18n.when("2026-12-04", "en")


def test_an_arabic_page_is_right_to_left(app_client) -> None:  # type: ignore[no-untyped-def]
    page = app_client.get("/console/sign-in", headers={"Accept-Language": "ar"})
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "تسجيل الدخول" in page.text
