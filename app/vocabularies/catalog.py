"""Load, validate and localise the controlled vocabularies in ``data/*.yaml``."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DATA_DIR = Path(__file__).parent / "data"
FALLBACK_LANGUAGE = "en"
REQUIRED_LANGUAGES = ("en", "ar")

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_EXTRA_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# BCP 47 in its common shape: primary subtag, then subtags such as script or region.
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")
_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")
# Keys that localized() writes for every code; an extra key may not shadow them.
_RESERVED_KEYS = frozenset({"code", "label", "labels", "definition"})
_MAX_ACCEPT_LANGUAGE = 4096

Texts = dict[str, str]


class VocabularyError(ValueError):
    """A vocabulary file is missing, unreadable or breaks the format."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


class Code(BaseModel):
    """One code of a vocabulary; extra keys such as ``rank`` or ``article`` are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    code: str
    labels: Texts
    definition: Texts | None = None

    @property
    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Vocabulary(BaseModel):
    """A named, versioned code list with labels in several languages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1)
    title: Texts
    description: Texts
    codes: tuple[Code, ...] = Field(min_length=1)

    @functools.cached_property
    def codes_set(self) -> frozenset[str]:
        return frozenset(c.code for c in self.codes)

    @functools.cached_property
    def _by_code(self) -> Mapping[str, Code]:
        return MappingProxyType({c.code: c for c in self.codes})

    @functools.cached_property
    def languages(self) -> frozenset[str]:
        """Every language in which at least one code has a label."""
        return frozenset(lang for c in self.codes for lang in c.labels)

    def has(self, code: str) -> bool:
        return code in self.codes_set

    def get(self, code: str) -> Code:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"{self.name}: unknown code {code!r}") from None

    def label(self, code: str, languages: Sequence[str] = ()) -> str:
        """The code's label in the first of ``languages`` it has, else in English."""
        return _pick(self.get(code).labels, languages)[1]

    def localized(self, languages: Sequence[str] = ()) -> dict[str, Any]:
        """The vocabulary rendered in one language, each text falling back to English."""
        language = _pick_language(self.languages, languages)
        chosen = [language]
        codes: list[dict[str, Any]] = []
        for c in self.codes:
            item: dict[str, Any] = {"code": c.code, "label": _pick(c.labels, chosen)[1]}
            if c.definition:
                item["definition"] = _pick(c.definition, chosen)[1]
            item.update(c.extras)
            codes.append(item)
        return {
            "name": self.name,
            "version": self.version,
            "title": _pick(self.title, chosen)[1],
            "description": _pick(self.description, chosen)[1],
            "language": language,
            "codes": codes,
        }


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def _match(requested: str, available: Iterable[str]) -> str | None:
    """The available tag for a requested one: exact, else same primary subtag."""
    options = list(available)
    lowered = requested.lower()
    for tag in options:
        if tag.lower() == lowered:
            return tag
    primary = _primary(requested)
    for tag in options:
        if tag.lower() == primary:
            return tag
    for tag in options:
        if _primary(tag) == primary:
            return tag
    return None


def _pick_language(available: Iterable[str], languages: Sequence[str]) -> str:
    options = list(available)
    for lang in languages:
        found = _match(lang, options)
        if found is not None:
            return found
    return FALLBACK_LANGUAGE


def _pick(texts: Mapping[str, str], languages: Sequence[str]) -> tuple[str, str]:
    lang = _pick_language(texts, languages)
    if lang in texts:
        return lang, texts[lang]
    return FALLBACK_LANGUAGE, texts[FALLBACK_LANGUAGE]


# --- loading -----------------------------------------------------------------------


def load_vocabularies(directory: Path | None = None) -> dict[str, Vocabulary]:
    """Load and validate every ``*.yaml`` vocabulary in ``directory`` (default: data/)."""
    root = DATA_DIR if directory is None else directory
    if not root.is_dir():
        raise VocabularyError(str(root), "vocabulary directory does not exist")
    result: dict[str, Vocabulary] = {}
    files = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
    for path in files:
        vocabulary = _load_file(path)
        if vocabulary.name in result:
            raise VocabularyError(path.name, f"vocabulary {vocabulary.name!r} defined twice")
        result[vocabulary.name] = vocabulary
    return result


@functools.cache
def vocabularies() -> Mapping[str, Vocabulary]:
    """The packaged vocabularies, loaded once per process."""
    return MappingProxyType(load_vocabularies())


def _load_file(path: Path) -> Vocabulary:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabularyError(path.name, f"cannot read file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise VocabularyError(path.name, f"invalid YAML: {_one_line(exc)}") from exc
    if not isinstance(raw, dict):
        raise VocabularyError(path.name, "top level must be a mapping")
    try:
        vocabulary = Vocabulary.model_validate(raw)
    except ValidationError as exc:
        raise VocabularyError(path.name, _describe(exc)) from exc
    problems = _check(vocabulary, path.stem)
    if problems:
        raise VocabularyError(path.name, "; ".join(problems))
    return vocabulary


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        parts.append(f"{where.lstrip('.') or 'document'}: {error['msg']}")
    return "; ".join(parts)


def _check(vocabulary: Vocabulary, stem: str) -> list[str]:
    problems: list[str] = []
    if vocabulary.name != stem:
        problems.append(f"name {vocabulary.name!r} does not match file name {stem!r}")
    problems += _check_texts("title", vocabulary.title)
    problems += _check_texts("description", vocabulary.description)
    seen: set[str] = set()
    for index, code in enumerate(vocabulary.codes):
        where = f"codes[{index}] ({code.code!r})"
        if not CODE_PATTERN.match(code.code):
            problems.append(f"{where}: code must match {CODE_PATTERN.pattern}")
        if code.code in seen:
            problems.append(f"{where}: duplicate code")
        seen.add(code.code)
        problems += _check_texts(f"{where}.labels", code.labels)
        if code.definition is not None:
            problems += _check_texts(f"{where}.definition", code.definition)
        for key, value in code.extras.items():
            if not _EXTRA_KEY_PATTERN.match(key) or key in _RESERVED_KEYS:
                problems.append(f"{where}: extra key {key!r} is not allowed")
            elif not isinstance(value, str | int | float | bool | None):
                problems.append(f"{where}: extra key {key!r} must be a scalar")
    problems += _check_rank(vocabulary)
    problems += _check_age_bands(vocabulary)
    return problems


def _check_texts(
    where: str, texts: Mapping[str, str], required: Sequence[str] = REQUIRED_LANGUAGES
) -> list[str]:
    problems = [
        f"{where}: bad language tag {tag!r}" for tag in texts if not _LANGUAGE_TAG.match(tag)
    ]
    problems += [
        f"{where}: empty text for {tag!r}" for tag, text in texts.items() if not text.strip()
    ]
    missing = [lang for lang in required if lang not in texts]
    if missing:
        problems.append(f"{where}: missing language(s) {', '.join(missing)}")
    return problems


def _check_rank(vocabulary: Vocabulary) -> list[str]:
    """When codes carry ``rank`` they all do, as distinct integers 1..n in list order."""
    ranks = [c.extras.get("rank") for c in vocabulary.codes]
    if all(r is None for r in ranks):
        return []
    expected = list(range(1, len(ranks) + 1))
    if ranks != expected:
        return [f"rank must be {expected} in list order, got {ranks}"]
    return []


def _check_age_bands(vocabulary: Vocabulary) -> list[str]:
    """Bands with ``min_age``/``max_age`` must tile the ages from 0 upwards."""
    codes = vocabulary.codes
    if all("min_age" not in c.extras and "max_age" not in c.extras for c in codes):
        return []
    next_age = 0
    for index, c in enumerate(codes):
        low, high = c.extras.get("min_age"), c.extras.get("max_age")
        last = index == len(codes) - 1
        if type(low) is not int or low != next_age:
            return [f"{c.code}: min_age must be {next_age}"]
        if last and high is None:
            return []
        if type(high) is not int or high < low:
            return [f"{c.code}: max_age must be an integer >= min_age (null only on the last)"]
        next_age = high + 1
    return ["the last age band must be open (max_age: null)"]


# --- Accept-Language -----------------------------------------------------------------


def negotiate_language(accept_language: str | None, available: Iterable[str]) -> list[str]:
    """Preference list of ``available`` languages for an Accept-Language header.

    Ranges are ordered by q-value (header order breaks ties); ``ar-LB`` matches an
    available ``ar`` and ``ar`` matches ``ar-LB``; ``q=0`` excludes a language. The list
    always ends with ``en``, the language every vocabulary is complete in, so anything
    ranked below it is dropped, and ``*`` adds nothing. Malformed ranges are skipped;
    a header with nothing usable gives ``["en"]``.
    """
    options = list(dict.fromkeys(available))
    ranges = _parse_accept_language(accept_language)
    excluded = {tag.lower() for tag, q in ranges if q == 0}
    result: list[str] = []
    for tag, q in sorted(ranges, key=lambda item: -item[1]):
        if q == 0 or tag == "*":
            continue
        found = _match(tag, [o for o in options if o.lower() not in excluded])
        if found is not None and found not in result:
            result.append(found)
        if found == FALLBACK_LANGUAGE:
            break
    if FALLBACK_LANGUAGE not in result:
        result.append(FALLBACK_LANGUAGE)
    return result


def _parse_accept_language(header: str | None) -> list[tuple[str, float]]:
    if not isinstance(header, str) or len(header) > _MAX_ACCEPT_LANGUAGE:
        return []
    best: dict[str, float] = {}
    for item in header.split(","):
        tag, *params = (part.strip() for part in item.split(";"))
        if tag != "*" and not _LANGUAGE_TAG.match(tag):
            continue
        q: float | None = 1.0
        for param in params:
            key, _, value = (s.strip() for s in param.partition("="))
            if key.lower() == "q":
                q = float(value) if _QVALUE.match(value) else None
        if q is None:
            continue
        tag = tag if tag == "*" else tag.lower()
        best[tag] = max(q, best.get(tag, 0.0))
    return list(best.items())


# --- age bands -----------------------------------------------------------------------


def age_in_years(date_of_birth: date, today: date) -> int:
    """Completed years; someone born on 29 February turns a year older on 1 March."""
    if date_of_birth > today:
        raise ValueError("date of birth is in the future")
    before_birthday = (today.month, today.day) < (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - int(before_birthday)


def age_band_for(date_of_birth: date, today: date, *, vocabulary: Vocabulary | None = None) -> str:
    """The ``age_band`` code for a person born on ``date_of_birth``, as of ``today``."""
    bands = vocabulary if vocabulary is not None else vocabularies()["age_band"]
    age = age_in_years(date_of_birth, today)
    for band in bands.codes:
        low, high = band.extras.get("min_age"), band.extras.get("max_age")
        if isinstance(low, int) and low <= age and (high is None or age <= high):
            return band.code
    raise VocabularyError(bands.name, f"no age band covers age {age}")
