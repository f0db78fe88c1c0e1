"""Vocabulary data files, the loader's validation, language negotiation and age bands."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from app.vocabularies.catalog import (
    DATA_DIR,
    Vocabulary,
    VocabularyError,
    age_band_for,
    load_vocabularies,
    negotiate_language,
    vocabularies,
)

EXPECTED = {
    "concern_category",
    "vulnerability_factor",
    "protective_factor",
    "requested_service",
    "intervention_type",
    "risk_level",
    "urgency",
    "consent_status",
    "legal_basis",
    "special_category_condition",
    "closure_outcome",
    "note_classification",
    "referral_status",
    "sector",
    "age_band",
    "gender",
}
ARABIC = re.compile(r"[\u0600-\u06FF]")
CYRILLIC = re.compile(r"[\u0400-\u04FF]")
LANGS = ["en", "ar", "mk", "sq"]


class TestPackagedData:
    def test_every_data_file_loads(self) -> None:
        loaded = load_vocabularies()
        stems = {p.stem for p in DATA_DIR.glob("*.yaml")}
        assert set(loaded) == stems == EXPECTED

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_every_code_has_english_and_arabic(self, name: str) -> None:
        vocabulary = vocabularies()[name]
        assert 4 <= len(vocabulary.codes) <= 15
        for text in (vocabulary.title, vocabulary.description):
            assert text["en"].strip() and ARABIC.search(text["ar"])
        for code in vocabulary.codes:
            assert code.labels["en"].strip(), code.code
            assert ARABIC.search(code.labels["ar"]), code.code
            if code.definition is not None:
                assert ARABIC.search(code.definition["ar"]), code.code

    def test_concern_categories_speak_macedonian_and_albanian(self) -> None:
        for code in vocabularies()["concern_category"].codes:
            assert CYRILLIC.search(code.labels["mk"]), code.code
            assert code.labels["sq"].strip(), code.code

    @pytest.mark.parametrize("name", ["risk_level", "urgency"])
    def test_ordered_vocabularies_rank_from_one(self, name: str) -> None:
        codes = vocabularies()[name].codes
        assert [c.extras["rank"] for c in codes] == list(range(1, len(codes) + 1))

    def test_special_category_conditions_cite_article_9(self) -> None:
        vocabulary = vocabularies()["special_category_condition"]
        assert vocabulary.get("substantial_public_interest").extras["article"] == "9(2)(g)"
        assert all(re.fullmatch(r"9\(2\)\([a-j]\)", c.extras["article"]) for c in vocabulary.codes)

    def test_sectors_match_the_design(self) -> None:
        assert vocabularies()["sector"].codes_set == {
            "local_government",
            "social_services",
            "education",
            "health",
            "police",
            "youth_work",
            "religious_community",
            "civil_society",
            "private_sector",
            "national_authority",
        }

    def test_cached_and_read_only(self) -> None:
        assert vocabularies() is vocabularies()
        with pytest.raises(TypeError):
            vocabularies()["gender"] = vocabularies()["sector"]  # type: ignore[index]


class TestVocabulary:
    def test_has_and_codes_set(self) -> None:
        risk = vocabularies()["risk_level"]
        assert risk.codes_set == frozenset({"low", "medium", "high", "critical"})
        assert risk.has("high") and not risk.has("severe")

    def test_label_picks_first_available_language(self) -> None:
        concern = vocabularies()["concern_category"]
        assert concern.label("hate_speech", ["fr", "sq", "ar"]) == "Gjuhë urrejtjeje"
        assert concern.label("hate_speech", ["ar-LB"]) == "خطاب الكراهية"
        assert concern.label("hate_speech", ["de"]) == "Hate speech"
        assert concern.label("hate_speech", []) == "Hate speech"

    def test_label_of_unknown_code_raises(self) -> None:
        with pytest.raises(KeyError, match="severe"):
            vocabularies()["risk_level"].label("severe", ["en"])

    def test_localized_shape(self) -> None:
        rendered = vocabularies()["risk_level"].localized(["ar"])
        assert rendered["name"] == "risk_level"
        assert rendered["version"] == 1
        assert rendered["language"] == "ar"
        assert rendered["title"] == "مستويات الخطر"
        assert rendered["codes"][0] == {
            "code": "low",
            "label": "منخفض",
            "definition": "توجد مخاوف، لكن لا مؤشرات على اتجاه نحو العنف.",
            "rank": 1,
        }

    def test_localized_falls_back_to_english_per_text(self) -> None:
        rendered = vocabularies()["concern_category"].localized(["mk", "ar"])
        assert rendered["language"] == "mk"
        first = rendered["codes"][0]
        assert first["label"] == "Инцидент од омраза"
        assert first["definition"].startswith("An act against")  # no mk definitions

    def test_localized_in_unknown_language_is_english(self) -> None:
        rendered = vocabularies()["gender"].localized(["fr", "de"])
        assert rendered["language"] == "en"
        assert [c["label"] for c in rendered["codes"]][:2] == ["Female", "Male"]
        assert "definition" not in rendered["codes"][0]

    def test_age_band_extras_are_kept(self) -> None:
        codes = vocabularies()["age_band"].localized(["en"])["codes"]
        assert codes[-1] == {
            "code": "35_plus",
            "label": "35 and over",
            "min_age": 35,
            "max_age": None,
        }


def _valid() -> dict[str, Any]:
    return {
        "name": "broken",
        "version": 1,
        "title": {"en": "Broken", "ar": "معطوب"},
        "description": {"en": "A test vocabulary.", "ar": "مفردات للاختبار."},
        "codes": [
            {"code": "alpha", "labels": {"en": "Alpha", "ar": "ألف"}},
            {"code": "beta", "labels": {"en": "Beta", "ar": "باء"}},
        ],
    }


def _write(directory: Path, document: Any, stem: str = "broken") -> Path:
    path = directory / f"{stem}.yaml"
    text = document if isinstance(document, str) else yaml.safe_dump(document, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def _duplicate_code(d: dict[str, Any]) -> None:
    d["codes"][1]["code"] = "alpha"


def _missing_arabic(d: dict[str, Any]) -> None:
    del d["codes"][1]["labels"]["ar"]


def _bad_code_syntax(d: dict[str, Any]) -> None:
    d["codes"][0]["code"] = "Hate-Incident"


def _leading_underscore(d: dict[str, Any]) -> None:
    d["codes"][0]["code"] = "_alpha"


def _name_mismatch(d: dict[str, Any]) -> None:
    d["name"] = "something_else"


def _unknown_top_level_key(d: dict[str, Any]) -> None:
    d["cods"] = d["codes"]


def _no_codes(d: dict[str, Any]) -> None:
    d["codes"] = []


def _empty_label(d: dict[str, Any]) -> None:
    d["codes"][0]["labels"]["en"] = "  "


def _title_without_arabic(d: dict[str, Any]) -> None:
    d["title"] = {"en": "Broken"}


def _definition_without_arabic(d: dict[str, Any]) -> None:
    d["codes"][0]["definition"] = {"en": "Only English."}


def _bad_language_tag(d: dict[str, Any]) -> None:
    d["codes"][0]["labels"]["english language"] = "Alpha"


def _ranks_out_of_order(d: dict[str, Any]) -> None:
    d["codes"][0]["rank"], d["codes"][1]["rank"] = 2, 1


def _rank_missing_on_one(d: dict[str, Any]) -> None:
    d["codes"][0]["rank"] = 1


def _age_band_gap(d: dict[str, Any]) -> None:
    d["codes"][0].update(min_age=0, max_age=11)
    d["codes"][1].update(min_age=13, max_age=None)


def _reserved_extra_key(d: dict[str, Any]) -> None:
    d["codes"][0]["label"] = "Alpha"


def _zero_version(d: dict[str, Any]) -> None:
    d["version"] = 0


BROKEN = {
    "duplicate code": (_duplicate_code, "duplicate code"),
    "missing ar label": (_missing_arabic, "missing language(s) ar"),
    "bad code syntax": (_bad_code_syntax, "code must match"),
    "leading underscore": (_leading_underscore, "code must match"),
    "stem differs from name": (_name_mismatch, "does not match file name"),
    "unknown top-level key": (_unknown_top_level_key, "cods"),
    "no codes": (_no_codes, "codes"),
    "empty label": (_empty_label, "empty text"),
    "title without ar": (_title_without_arabic, "title: missing language(s) ar"),
    "definition without ar": (_definition_without_arabic, "definition: missing"),
    "bad language tag": (_bad_language_tag, "bad language tag"),
    "ranks out of order": (_ranks_out_of_order, "rank must be"),
    "rank on one code only": (_rank_missing_on_one, "rank must be"),
    "age bands with a gap": (_age_band_gap, "min_age must be 12"),
    "extra key shadows label": (_reserved_extra_key, "extra key 'label'"),
    "version zero": (_zero_version, "version"),
}


class TestBrokenFiles:
    @pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
    def test_broken_document_names_the_file(self, tmp_path: Path, case: str) -> None:
        mutate, reason = BROKEN[case]
        document = _valid()
        mutate(document)
        _write(tmp_path, document)
        with pytest.raises(VocabularyError, match=re.escape(reason)) as caught:
            load_vocabularies(tmp_path)
        assert caught.value.file == "broken.yaml"
        assert str(caught.value).startswith("broken.yaml: ")

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("name: broken\ncodes: [\n", "invalid YAML"),
            ("name: broken\n  version: 1\n", "invalid YAML"),
            ("- just\n- a list\n", "top level must be a mapping"),
            ("", "top level must be a mapping"),
        ],
        ids=["unclosed flow", "bad indentation", "list", "empty file"],
    )
    def test_unparsable_file_names_the_file(self, tmp_path: Path, text: str, reason: str) -> None:
        _write(tmp_path, text)
        with pytest.raises(VocabularyError, match=reason) as caught:
            load_vocabularies(tmp_path)
        assert caught.value.file == "broken.yaml"

    def test_unquoted_numeric_code_is_refused(self, tmp_path: Path) -> None:
        # YAML 1.1 reads 12_15 as the integer 1215; such codes must be quoted.
        text = yaml.safe_dump(_valid(), allow_unicode=True).replace("code: alpha", "code: 12_15")
        _write(tmp_path, text)
        with pytest.raises(VocabularyError, match=r"codes\[0\]\.code"):
            load_vocabularies(tmp_path)

    def test_error_is_a_value_error(self) -> None:
        assert issubclass(VocabularyError, ValueError)

    def test_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(VocabularyError, match="does not exist"):
            load_vocabularies(tmp_path / "nowhere")

    def test_same_name_twice(self, tmp_path: Path) -> None:
        _write(tmp_path, _valid())
        (tmp_path / "broken.yml").write_text(yaml.safe_dump(_valid()), encoding="utf-8")
        with pytest.raises(VocabularyError, match="defined twice"):
            load_vocabularies(tmp_path)

    def test_valid_document_loads_with_extras(self, tmp_path: Path) -> None:
        document = _valid()
        document["codes"][0]["rank"] = 1
        document["codes"][1]["rank"] = 2
        _write(tmp_path, document)
        loaded = load_vocabularies(tmp_path)
        assert isinstance(loaded["broken"], Vocabulary)
        assert loaded["broken"].get("beta").extras == {"rank": 2}


AVAILABLE = ["en", "ar", "mk", "sq"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ar-LB,ar;q=0.9,en;q=0.5", ["ar", "en"]),
        ("ar", ["ar", "en"]),
        ("AR-lb", ["ar", "en"]),
        ("en", ["en"]),
        ("en,ar", ["en"]),  # ar ranks below en, which is always available
        ("mk;q=0.5, sq;q=0.8", ["sq", "mk", "en"]),
        ("mk;q=0.8, sq;q=0.8", ["mk", "sq", "en"]),  # ties keep header order
        ("sq; q=0.3, mk-MK ;q=1", ["mk", "sq", "en"]),
        ("fr-CA, fr;q=0.9, ar;q=0.1", ["ar", "en"]),
        ("de", ["en"]),
        ("ar;q=0, en", ["en"]),
        ("ar;q=0.000, mk", ["mk", "en"]),
        ("ar;q=0.2, ar;q=0.9, mk;q=0.5", ["ar", "mk", "en"]),
        ("*", ["en"]),
        ("*;q=0.5, mk", ["mk", "en"]),
        ("ar, *;q=0.1", ["ar", "en"]),
        ("", ["en"]),
        (None, ["en"]),
        (",,;;", ["en"]),
        ("ar;q=2", ["en"]),
        ("ar;q=abc, mk", ["mk", "en"]),
        ("ar;q=nan", ["en"]),
        ("ar;q=0.1234", ["en"]),
        ("ar;q=", ["en"]),
        ("<script>", ["en"]),
        ("ar_LB", ["en"]),
        ("\x00ar\xff", ["en"]),
        ("a" * 10_000, ["en"]),
        ("ar;level=1", ["ar", "en"]),
    ],
)
def test_negotiate_language(header: str | None, expected: list[str]) -> None:
    assert negotiate_language(header, AVAILABLE) == expected


def test_negotiate_language_maps_to_regional_available_tag() -> None:
    assert negotiate_language("ar", ["en", "ar-LB"]) == ["ar-LB", "en"]
    assert negotiate_language("mk", set()) == ["en"]


TODAY = date(2026, 5, 10)


@pytest.mark.parametrize(
    ("born", "today", "band"),
    [
        (TODAY, TODAY, "under_12"),  # born today
        (date(2014, 5, 11), TODAY, "under_12"),  # day before 12th birthday
        (date(2014, 5, 10), TODAY, "12_15"),  # 12th birthday today
        (date(2010, 5, 11), TODAY, "12_15"),  # day before 16th birthday
        (date(2010, 5, 10), TODAY, "16_17"),
        (date(2008, 5, 11), TODAY, "16_17"),
        (date(2008, 5, 10), TODAY, "18_24"),  # 18 today
        (date(2001, 5, 11), TODAY, "18_24"),
        (date(2001, 5, 10), TODAY, "25_34"),
        (date(1991, 5, 11), TODAY, "25_34"),
        (date(1991, 5, 10), TODAY, "35_plus"),
        (date(1920, 1, 1), TODAY, "35_plus"),
        (date(2008, 2, 29), date(2026, 2, 28), "16_17"),  # leap-day birth, not yet 18
        (date(2008, 2, 29), date(2026, 3, 1), "18_24"),
        (date(2008, 2, 29), date(2024, 2, 29), "16_17"),  # 16 on an actual 29 February
        (date(2013, 12, 31), date(2025, 12, 31), "12_15"),
        (date(2013, 12, 31), date(2025, 12, 30), "under_12"),
    ],
)
def test_age_band_for(born: date, today: date, band: str) -> None:
    assert age_band_for(born, today) == band


def test_age_band_for_future_birth_date() -> None:
    with pytest.raises(ValueError, match="future"):
        age_band_for(date(2026, 5, 11), TODAY)
