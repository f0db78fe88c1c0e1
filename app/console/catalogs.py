"""The console's message catalogs: extract every marked string, keep each language's .po up to date.

    python -m app.console.catalogs update    # extract, then add new strings to every .po (untranslated)
    python -m app.console.catalogs check     # list the strings a language lacks (exit 1 if Arabic lacks any)

Strings are marked with ``_()`` / ``gettext()`` in templates and ``N_()`` / ``gettext()`` in Python;
``tests/console/test_catalogs.py`` holds every one of them to an Arabic translation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from app.console.i18n import DEFAULT, DOMAIN, LANGUAGES, LOCALES_DIR

PACKAGE = Path(__file__).parent
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}}
REQUIRED = ("ar",)
"""Languages every string must have (the others: where a translation exists)."""


def extract() -> Catalog:
    """Every marked string of the console, with where it is used."""
    catalog = Catalog(domain=DOMAIN, project="CaseBridge console")
    found = extract_from_dir(str(PACKAGE), METHODS, options_map=OPTIONS, keywords=KEYWORDS,
                             comment_tags=("Translators:",), strip_comment_tags=True)
    for filename, lineno, message, comments, context in found:
        if filename.endswith("catalogs.py"):
            continue
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(language: str) -> Catalog:
    path = po_path(language)
    if not path.exists():
        return Catalog(locale=language, domain=DOMAIN)
    with path.open("rb") as source:
        return read_po(source, locale=language, domain=DOMAIN)


def update() -> None:
    template = extract()
    for language in LANGUAGES:
        if language == DEFAULT:
            continue
        catalog = read(language)
        catalog.update(template, no_fuzzy_matching=True)
        path = po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            write_po(out, catalog, width=120, omit_header=False, include_previous=False, sort_output=True)


def missing(language: str) -> list[str]:
    """Marked strings with no (or only a fuzzy) translation in the language."""
    catalog = read(language)
    lacking = []
    for message in extract():
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        text = found.string if found is not None else None
        translated = all(text) if isinstance(text, tuple) else bool(text)
        if found is None or not translated or found.fuzzy:
            lacking.append(str(message.id))
    return lacking


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "update":
        update()
        return 0
    failed = False
    for language in LANGUAGES:
        if language == DEFAULT:
            continue
        lacking = missing(language)
        print(f"{language}: {len(lacking)} missing")  # noqa: T201 - a command's output
        if language in REQUIRED and lacking:
            failed = True
            for text in lacking:
                print(f"  {text}")  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
