"""Loader: every refusal names file, line and reason; good files load; hashes are sha256."""

import hashlib
import textwrap
from pathlib import Path

import pytest
from policy_factories import GOOD, POLICIES

from app.policy import REFERRAL_FIELDS, load_agreements, parse_agreement


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing `needle`."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def refuse(text: str, source: str = "net.yaml") -> list[tuple[str, int | None, str]]:
    parsed = parse_agreement(text.encode(), source)
    assert parsed.agreement is None, "expected the agreement to be refused"
    return [(e.file, e.line, e.reason) for e in parsed.errors]


def test_good_file_loads_with_content_hash() -> None:
    parsed = parse_agreement(GOOD.encode(), "net.yaml")
    assert parsed.errors == [] and parsed.agreement is not None
    assert parsed.agreement.content_hash == hashlib.sha256(GOOD.encode()).hexdigest()
    assert parsed.agreement.views["referral.full"].special == {
        "subject.ethnicity",
        "subject.religion",
    }
    assert parsed.agreement.views["referral.case"].items == {
        "id",
        "concerns",
        "status",
        "narrative",
        "risk_level",
    }


class TestErrors:
    def test_yaml_syntax(self) -> None:
        text = GOOD.replace("title: A network", "title: [unclosed")
        ((file, line, reason),) = refuse(text)
        assert file == "net.yaml" and reason.startswith("YAML syntax error")
        assert line is not None and line >= line_of(text, "title:")

    def test_unknown_field(self) -> None:
        text = GOOD.replace("    view: statistics\n", "    view: statistics\n    colour: red\n")
        ((file, line, reason),) = refuse(text)
        assert (file, line) == ("net.yaml", line_of(text, "colour: red"))
        assert reason == "unknown field 'colour'"

    def test_unknown_top_level_field_suggests(self) -> None:
        text = GOOD.replace("version: 2", "version: 2\nreview_date: 2027-01-01")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "review_date")
        assert "did you mean 'review_by'" in reason

    def test_duplicated_rule_id(self) -> None:
        text = GOOD.replace("  - id: stats", "  - id: case-to-hall")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "- id: case-to-hall", 2)
        assert reason == "duplicated rule id 'case-to-hall' (first used by rules[0])"

    def test_undeclared_purpose(self) -> None:
        text = GOOD.replace("purposes: [assessment]", "purposes: [assesment]")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "purposes: [assesment]")
        assert reason.startswith("undeclared purpose 'assesment' (did you mean 'assessment'?)")

    def test_unknown_view(self) -> None:
        text = GOOD.replace("view: referral.case\n", "view: referral.cases\n")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "view: referral.cases")
        assert reason == "unknown view 'referral.cases' (did you mean 'referral.case'?)"

    def test_unknown_view_field(self) -> None:
        text = GOOD.replace("[narrative, risk_level]", "[narrative, risk_levle]")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "risk_levle")
        assert reason == "unknown field 'risk_levle' (did you mean 'risk_level'?)"

    def test_fields_are_checked_against_the_known_set(self) -> None:
        parsed = parse_agreement(
            GOOD.encode(), "net.yaml", known_fields=REFERRAL_FIELDS - {"narrative"}
        )
        assert [e.reason for e in parsed.errors] == ["unknown field 'narrative'"]

    @pytest.mark.parametrize(
        ("field", "hint"),
        [
            ("purposes", "purposes it serves"),
            ("legal_basis", "GDPR Art. 6(1)"),
            ("retention", "how long the recipient may keep it"),
        ],
    )
    def test_missing_purpose_legal_basis_or_retention(self, field: str, hint: str) -> None:
        lines = GOOD.splitlines(keepends=True)
        target = next(i for i, line in enumerate(lines) if line.startswith(f"    {field}:"))
        text = "".join(lines[:target] + lines[target + 1 :])
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "- id: case-to-hall")
        assert reason.startswith(f"missing required field '{field}'") and hint in reason

    def test_empty_purposes(self) -> None:
        text = GOOD.replace("purposes: [assessment]", "purposes: []")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "purposes: []")
        assert reason == "a permit needs at least one purpose"

    def test_special_category_without_art9_condition(self) -> None:
        text = GOOD.replace("view: referral.case\n", "view: referral.full\n")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "view: referral.full")
        assert "subject.ethnicity, subject.religion" in reason
        assert "special_category_condition (GDPR Art. 9(2))" in reason

    def test_special_category_with_condition_loads(self) -> None:
        text = GOOD.replace(
            "view: referral.case\n",
            "view: referral.full\n    special_category_condition: substantial_public_interest\n",
        )
        assert parse_agreement(text.encode(), "net.yaml").agreement is not None

    def test_effective_from_not_before_review_by(self) -> None:
        text = GOOD.replace("review_by: 2027-01-01", "review_by: 2026-01-01")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "review_by:")
        assert reason == "review_by 2026-01-01 must be after effective_from 2026-01-01"

    @pytest.mark.parametrize("retention", ["6 years", "P6X", "P6Y after opened", "P0D", "PT"])
    def test_bad_retention(self, retention: str) -> None:
        text = GOOD.replace("retention: P5Y", f"retention: {retention}")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, f"retention: {retention}")
        assert reason.startswith(f"bad retention {retention!r}")

    def test_view_include_cycle(self) -> None:
        text = GOOD.replace(
            "referral.summary: [id, concerns, status]",
            "referral.summary: {include: [referral.case], fields: [id]}",
        )
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "include: [referral.summary]")
        assert reason == "view include cycle: referral.summary -> referral.case -> referral.summary"

    def test_duplicate_yaml_key(self) -> None:
        text = GOOD.replace("  statistics: Count.", "  statistics: Count.\n  assessment: Again.")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "assessment: Again.")
        assert reason == "duplicate key 'assessment'"

    def test_view_shape_must_match_its_name(self) -> None:
        text = GOOD.replace("notes.shared: {notes:", "referral.shared: {notes:")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "referral.shared:")
        assert reason.startswith("view referral.shared must be a field list")

    def test_unknown_statistics_dimension(self) -> None:
        text = GOOD.replace("aggregate: [concerns, district]", "aggregate: [concerns, postcode]")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "postcode")
        assert reason.startswith("unknown statistics dimension 'postcode'")

    def test_special_dimension_needs_art9_condition(self) -> None:
        text = GOOD.replace("aggregate: [concerns, district]", "aggregate: [concerns, religion]")
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "view: statistics")
        assert "religion" in reason and "Art. 9(2)" in reason

    def test_min_cell_below_floor(self) -> None:
        text = GOOD.replace(
            "aggregate: [concerns, district]}", "aggregate: [concerns], min_cell: 2}"
        )
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "min_cell: 2")
        assert reason == "min_cell 2 is below the agreement's floor 5"

    def test_bad_enum_value(self) -> None:
        text = GOOD.replace("legal_basis: public_task\n", "legal_basis: public_interest\n", 1)
        ((_, line, reason),) = refuse(text)
        assert line == line_of(text, "public_interest")
        assert "public_task" in reason

    def test_every_error_is_reported_at_once(self) -> None:
        text = GOOD.replace("purposes: [assessment]", "purposes: [nope]").replace(
            "view: referral.case\n", "view: referral.nope\n"
        )
        assert len(refuse(text)) == 2

    def test_error_str_has_file_line_path(self) -> None:
        text = GOOD.replace("purposes: [assessment]", "purposes: [nope]")
        (error,) = parse_agreement(text.encode(), "dir/net.yaml").errors
        assert str(error).startswith(
            f"dir/net.yaml:{line_of(text, 'purposes: [nope]')}: rules[0].purposes[0]: "
        )
        assert error.agreement == "net"


class TestWarnings:
    def test_unknown_parties_warn(self) -> None:
        parsed = parse_agreement(
            GOOD.encode(), "net.yaml", known_agencies={"town-hall", "school-1"}
        )
        assert parsed.agreement is not None
        assert parsed.warnings == [
            f"net.yaml:{line_of(GOOD, 'parties:')}: parties[2]: unknown party 'police-1':"
            " no such agency is registered"
        ]

    def test_permit_denied_identically_is_a_warning(self) -> None:
        text = GOOD + textwrap.indent(
            "- id: hall-no-case\n  to: {agencies: [town-hall]}\n  view: referral.case\n", "  "
        )
        parsed = parse_agreement(text.encode(), "net.yaml")
        assert parsed.agreement is not None
        assert any("deny hall-no-case cancels it" in w for w in parsed.warnings)


class TestDirectory:
    def write(self, folder: Path, name: str, text: str) -> None:
        (folder / name).write_text(text, encoding="utf-8")

    def test_broken_file_is_left_out_others_load(self, tmp_path: Path) -> None:
        self.write(tmp_path, "a.yaml", GOOD)
        self.write(
            tmp_path,
            "b.yaml",
            GOOD.replace("agreement: net", "agreement: other").replace(
                "    legal_basis: public_task\n", "", 1
            ),
        )
        result = load_agreements(tmp_path)
        assert [a.id for a in result.policy_set] == ["net"]
        ((error),) = result.errors
        assert error.file == str(tmp_path / "b.yaml") and error.agreement == "other"

    def test_duplicate_agreement_id_across_files(self, tmp_path: Path) -> None:
        self.write(tmp_path, "a.yaml", GOOD)
        self.write(tmp_path, "b.yaml", GOOD.replace("version: 2", "version: 3"))
        result = load_agreements(tmp_path)
        assert [a.version for a in result.policy_set] == [2]
        (error,) = result.errors
        assert (error.file, error.line) == (str(tmp_path / "b.yaml"), 1)
        assert (
            error.reason
            == f"duplicate agreement id 'net': already defined in {tmp_path / 'a.yaml'}"
        )

    def test_shipped_agreements_load_cleanly(self) -> None:
        for folder in (POLICIES, POLICIES / "examples"):
            result = load_agreements(folder)
            assert result.errors == [] and result.warnings == []
            assert len(result.policy_set) >= 1
