"""Tooling: lint, who_can, ROPA, policy tests, JSON Schema, explain."""

import json
from datetime import date
from pathlib import Path

import pytest
from policy_factories import (
    DEMO,
    EXAMPLES,
    IN_FORCE,
    POLICIES,
    caller,
    minimal_document,
    note,
    policy_set_of,
    referral,
    shipped,
    shipped_examples,
    statistics,
)

from app.policy import (
    PolicySet,
    agreement_json_schema,
    check,
    explain,
    load_agreements,
    ropa,
    ropa_markdown,
    run_policy_tests,
    who_can,
)
from app.policy.schema_export import (
    NETWORK_SCHEMA_PATH,
    SCHEMA_PATH,
    agreement_json_schema_text,
    network_json_schema,
    network_json_schema_text,
)


@pytest.fixture(scope="module")
def demo() -> PolicySet:
    return shipped().policy_set


def permit(rule_id: str, view: str, purposes: list[str], **extra: object) -> dict[str, object]:
    return {
        "id": rule_id,
        "to": extra.pop("to", {"sectors": ["education"]}),
        "view": view,
        "purposes": purposes,
        "legal_basis": extra.pop("legal_basis", "public_task"),
        "retention": "P1Y",
        **extra,
    }


class TestCheck:
    def messages(
        self, policy_set: PolicySet, now: date = IN_FORCE
    ) -> list[tuple[str, str | None, str]]:
        return [(f.level, f.rule, f.message) for f in check(policy_set, now)]

    def test_shipped_agreements_have_no_warnings(self) -> None:
        for result in (shipped(), shipped_examples()):
            findings = check(result, date(2026, 6, 1))
            assert [f for f in findings if f.level != "info"] == []

    def test_review_dates(self) -> None:
        policy_set = policy_set_of(minimal_document())
        assert ("warning", None, "review due by 2027-01-01 (10 days left)") in self.messages(
            policy_set, date(2026, 12, 22)
        )
        assert self.messages(policy_set, date(2027, 1, 1))[0][0] == "error"
        assert "expired on 2027-01-01" in self.messages(policy_set, date(2027, 1, 1))[0][2]

    def test_permit_that_can_never_fire(self) -> None:
        rules = [
            permit("empty-to", "referral.case", ["assessment"], to={}),
            permit("empty-roles", "referral.case", ["assessment"], to={"roles": []}),
            permit("bad-status", "referral.case", ["assessment"], when={"status": ["aproved"]}),
            permit("stranger", "referral.case", ["assessment"], to={"agencies": ["nobody"]}),
            permit(
                "class-on-referral",
                "referral.case",
                ["assessment"],
                when={"classification": ["shared"]},
            ),
            permit(
                "class-outside", "notes.shared", ["assessment"], when={"classification": ["health"]}
            ),
        ]
        messages = self.messages(policy_set_of(minimal_document(rules=rules)))
        never = {rule for level, rule, message in messages if message.startswith("never fires")}
        assert never == {r["id"] for r in rules}

    def test_permit_cancelled_by_deny(self) -> None:
        document = minimal_document(
            rules=[permit("case-to-schools", "referral.case", ["assessment"])],
            deny=[
                {
                    "id": "no-narrative",
                    "to": {"sectors": ["education", "police"]},
                    "view": ["narrative"],
                }
            ],
        )
        assert (
            "warning",
            "case-to-schools",
            "entirely cancelled by deny no-narrative: it can never disclose anything",
        ) in self.messages(policy_set_of(document))

    def test_deny_for_other_purposes_does_not_cancel(self) -> None:
        document = minimal_document(
            rules=[permit("case-to-schools", "referral.case", ["assessment", "service_provision"])],
            deny=[{"id": "no-narrative", "view": ["narrative"], "purposes": ["assessment"]}],
        )
        assert not any("cancelled" in m for _, _, m in self.messages(policy_set_of(document)))

    def test_grants_more_than_the_purpose_needs(self) -> None:
        document = minimal_document(
            views={
                "referral.full": ["subject.*", "narrative"],
                "referral.summary": ["id", "concerns"],
            },
            rules=[
                permit(
                    "stats-from-records",
                    "referral.full",
                    ["statistics"],
                    special_category_condition="substantial_public_interest",
                ),
                permit(
                    "full-to-ngos",
                    "referral.full",
                    ["service_provision"],
                    to={"sectors": ["civil_society"], "roles": ["partner_reader"]},
                    special_category_condition="explicit_consent",
                ),
            ],
        )
        messages = self.messages(policy_set_of(document))
        assert any(
            rule == "stats-from-records" and "direct identifiers" in m for _, rule, m in messages
        )
        assert any(
            rule == "full-to-ngos" and "to civil-society partners" in m and "subject.religion" in m
            for _, rule, m in messages
        )

    def test_consent_basis_without_consent_condition(self) -> None:
        document = minimal_document(
            rules=[permit("c", "referral.case", ["assessment"], legal_basis="consent")]
        )
        assert any(
            "legal basis is consent" in m for _, _, m in self.messages(policy_set_of(document))
        )

    def test_load_errors_become_findings(self, tmp_path: Path) -> None:
        (tmp_path / "bad.yaml").write_text("agreement: [", encoding="utf-8")
        findings = check(load_agreements(tmp_path), IN_FORCE)
        assert findings[0].level == "error" and "YAML syntax error" in findings[0].message


class TestWhoCan:
    def test_lists_audiences_and_conditions(self, demo: PolicySet) -> None:
        recipients = {
            r.rule_id: r
            for r in who_can(demo, "referral.summary", "service_provision", IN_FORCE, DEMO)
        }
        assert set(recipients) == {
            "owner-full",
            "assigned-caseworker-contact",
            "assigned-agency-case",
            "assigned-partner-summary",
            "partner-summary",
        }
        partners = recipients["partner-summary"]
        assert partners.sectors == ("civil_society", "religious_community", "youth_work")
        assert partners.roles == ("partner_reader",)
        # The network is the agreement's, listed apart from the conditions the rule states.
        assert partners.networks == (DEMO,)
        assert partners.conditions == {
            "consent": ("given",),
            "status": ("accepted", "assigned", "in_intervention"),
        }
        assert partners.to_dict()["networks"] == [DEMO]
        json.dumps([r.to_dict() for r in recipients.values()])

    def test_every_network_or_one(self, demo: PolicySet) -> None:
        everywhere = who_can(demo, "referral.summary", "service_provision", IN_FORCE)
        assert {(r.agreement_id, r.networks) for r in everywhere} == {
            ("demo-city", ("demo-city",)),
            ("demo-town", ("demo-town",)),
            ("training-demo", ("training-demo",)),  # the demo's training network (docs/training.md)
        }
        town = who_can(demo, "referral.summary", "service_provision", IN_FORCE, "demo-town")
        assert town and {r.agreement_id for r in town} == {"demo-town"}
        assert who_can(demo, "referral.summary", "service_provision", IN_FORCE, "nowhere") == []

    def test_flags_denies_that_may_cancel(self, demo: PolicySet) -> None:
        health = {
            r.rule_id: r for r in who_can(demo, "notes.health", "service_provision", IN_FORCE, DEMO)
        }
        assert set(health) == {"health-notes-to-care", "author-notes"}
        assert health["health-notes-to-care"].restricted_by == ()
        notes = {
            r.rule_id: r
            for r in who_can(demo, "notes.shared", "intervention_planning", IN_FORCE, DEMO)
        }
        # Police are in the audience, but the police deny is about health notes only.
        assert notes["assigned-shared-notes"].restricted_by == ()
        summaries = {
            r.rule_id: r
            for r in who_can(demo, "referral.summary", "service_provision", IN_FORCE, DEMO)
        }
        assert summaries["owner-full"].restricted_by == ("national-authority-no-case-data",)

    def test_nothing_after_review(self, demo: PolicySet) -> None:
        assert who_can(demo, "referral.summary", "service_provision", date(2028, 1, 1)) == []


class TestRopa:
    def test_record_of_processing(self, demo: PolicySet) -> None:
        record = ropa(demo)
        entries = {e["agreement"]: e for e in record["agreements"]}
        assert set(entries) == {"demo-city", "demo-town", "national-statistics", "training-demo"}
        entry = entries["demo-city"]
        assert entry["networks"] == [DEMO] and entries["demo-town"]["networks"] == ["demo-town"]
        networks = {n["network"]: n for n in record["networks"]}
        assert networks[DEMO]["coordinator"] == "city-municipality"
        assert networks[DEMO]["agreements"] == ["demo-city", "national-statistics"]
        assert "town-school" in networks["demo-town"]["members"]
        assert "town-school" not in networks[DEMO]["members"]
        assert entry["controller_contact"] == "dpo@city-municipality.example"
        assert entry["review_by"] == "2027-06-30"
        assert entry["data_categories"]["referral.full"]["special_categories"] == [
            "subject.ethnicity",
            "subject.religion",
        ]
        assert (
            "subject.given_name"
            in entry["data_categories"]["referral.contact"]["direct_identifiers"]
        )
        purposes = {p["id"]: p for p in entry["purposes"]}
        assert purposes["statistics"]["recipients"] == [
            "national-statistics",
            "coordinator-statistics",
        ]
        assert "emergency" in purposes
        recipients = {r["rule"]: r for r in entry["recipients"]}
        assert recipients["partner-summary"]["retention"] == "P90D"
        assert "network" not in recipients["partner-summary"]["conditions"]
        assert recipients["partner-summary"]["legal_basis"] == "consent"
        assert {"substantial_public_interest", "health_social_care"} <= set(
            entry["special_category_conditions"]
        )
        json.dumps(entry)

    def test_markdown(self, demo: PolicySet) -> None:
        text = ropa_markdown(demo)
        assert text.startswith("# Record of processing activities (GDPR Art. 30)")
        assert "| partner-summary |" in text and "dpo@city-municipality.example" in text
        assert "- Network: demo-city (it decides records of this network only)" in text
        assert "| demo-town | Demo Town Community Action Team | town-council | demo-town, national-statistics |" in text


class TestPolicyTests:
    @pytest.mark.parametrize("folder", [POLICIES, EXAMPLES])
    def test_shipped_policy_tests_pass_and_cover_every_rule(self, folder: Path) -> None:
        result = load_agreements(folder)
        report = run_policy_tests(result.policy_set, folder / "tests")
        assert report.failed == []
        assert report.uncovered == {}
        assert report.passed >= 10
        assert set(report.coverage) == {a.id for a in result.policy_set}

    def test_failures_and_uncovered_rules_are_reported(
        self, tmp_path: Path, demo: PolicySet
    ) -> None:
        (tmp_path / "demo-city.yaml").write_text(
            "agreement: demo-city\nnow: 2026-06-01\ncases:\n"
            "  - name: wrong expectation\n"
            "    caller: {agency: youth-ngo-bridges, sector: youth_work, roles: [partner_reader]}\n"
            "    purpose: service_provision\n"
            "    record: {consent: given, status: assigned}\n"
            "    expect: {decision: deny}\n"
            "  - name: right expectation\n"
            "    caller: {agency: youth-ngo-bridges, sector: youth_work, roles: [partner_reader]}\n"
            "    purpose: service_provision\n"
            "    record: {consent: given, status: assigned}\n"
            "    expect: {decision: permit, view: referral.summary, rules: [partner-summary]}\n",
            encoding="utf-8",
        )
        (tmp_path / "broken.yaml").write_text("agreement: x\ncases: nope\n", encoding="utf-8")
        report = run_policy_tests(demo, tmp_path)
        assert report.passed == 1
        messages = [str(f) for f in report.failed]
        assert any("wrong expectation: expected deny, got permit" in m for m in messages)
        assert any("broken.yaml" in m for m in messages)
        assert report.coverage["demo-city"]["partner-summary"] == 2
        assert "coordinator-full" in report.uncovered["demo-city"]
        json.dumps(report.to_dict())


class TestExplain:
    def test_first_failing_condition_per_rule(self, demo: PolicySet) -> None:
        police = caller("city-community-police", "police", ("caseworker",), ("assigned",))
        explanation = explain(
            demo, police, "service_provision", referral(DEMO, consent="refused"), now=IN_FORCE
        )
        reasons = {t.rule_id: t.reason for t in explanation.rules if t.agreement_id == DEMO}
        assert (
            reasons["partner-summary"]
            == "caller sector police not in [civil_society, religious_community, youth_work]"
        )
        assert (
            reasons["police-assigned-case"]
            == "purpose service_provision not in rule purposes [intervention_planning]"
        )
        assert reasons["assigned-agency-case"] == (
            "caller sector police not in [education, health, local_government, social_services]"
        )
        assert not explanation.decision.permit
        json.dumps(explanation.to_dict())

    def test_condition_and_expiry_messages(self, demo: PolicySet) -> None:
        partner = caller("youth-ngo-bridges", "youth_work", ("partner_reader",))
        explanation = explain(
            demo,
            partner,
            "service_provision",
            referral(DEMO, consent="refused", status="assigned"),
            now=IN_FORCE,
        )
        assert {(t.agreement_id, t.rule_id): t.reason for t in explanation.rules}[
            (DEMO, "partner-summary")
        ] == "consent=refused not in [given]"
        expired = explain(demo, partner, "service_provision", referral(DEMO), now=date(2027, 7, 1))
        assert {t.reason for t in expired.rules} == {"agreement expired on 2027-06-30"}

    def test_winning_deny_is_named(self, demo: PolicySet) -> None:
        police = caller("city-community-police", "police", ("caseworker",), ("assigned",))
        explanation = explain(
            demo, police, "intervention_planning", note("health", DEMO), now=IN_FORCE
        )
        assert explanation.winning_deny == "no-health-notes-to-police"
        won = [t for t in explanation.rules if t.selected]
        assert [(t.rule_id, t.effect, t.status) for t in won] == [
            ("no-health-notes-to-police", "deny", "matched")
        ]
        data = explanation.to_dict()
        assert data["decision"]["reason"] == "denied by rule no-health-notes-to-police"

    def test_another_networks_record_is_not_decided(self, demo: PolicySet) -> None:
        """Every rule of demo-city says why: the record is of another network."""
        coordinator = caller("city-municipality", "local_government", ("coordinator",))
        record = referral("demo-town", consent="given", status="submitted")
        explanation = explain(demo, coordinator, "safeguarding_assessment", record, now=IN_FORCE)
        assert not explanation.decision.permit
        city = [t for t in explanation.rules if t.agreement_id == DEMO]
        assert city and {t.reason for t in city} == {
            "record is of network demo-town; demo-city decides network demo-city"
        }
        # demo-town's rules: the coordinator of demo-city is not a party to them.
        town = {t.reason for t in explanation.rules if t.agreement_id == "demo-town"}
        assert town == {"agency city-municipality is not a party to demo-town"}

    def test_a_record_naming_no_network_fails_permits_and_meets_denies(
        self, demo: PolicySet
    ) -> None:
        police = caller("city-community-police", "police", ("caseworker",), ("assigned",))
        explanation = explain(
            demo, police, "intervention_planning", note("health", None), now=IN_FORCE
        )
        traces = {(t.effect, t.rule_id): t for t in explanation.rules if t.agreement_id == DEMO}
        assert traces[("permit", "assigned-shared-notes")].reason == (
            "record names no network; demo-city decides network demo-city"
        )
        deny = traces[("deny", "no-health-notes-to-police")]
        assert deny.status == "matched" and deny.reason is None
        assert explanation.decision.reason_code == "denied_by_rule"

    def test_networks_of_a_national_agreement_are_listed(self, tmp_path: Path) -> None:
        document = minimal_document(
            networks=["north", "south"],
            views={"statistics": {"aggregate": ["concerns", "district"]}},
            rules=[permit("stats", "statistics", ["statistics"])],
        )
        policy_set = policy_set_of(document)
        school = caller("agency-a", "education")
        explanation = explain(policy_set, school, "statistics", statistics("east"), now=IN_FORCE)
        assert [t.reason for t in explanation.rules] == [
            "record is of network east; test-net decides networks [north, south]"
        ]
        assert explain(policy_set, school, "statistics", statistics("south"), now=IN_FORCE).decision.permit


class TestJsonSchema:
    def test_committed_schema_matches_the_models(self) -> None:
        assert SCHEMA_PATH.read_text(encoding="utf-8") == agreement_json_schema_text()

    def test_committed_network_schema_matches_the_model(self) -> None:
        assert NETWORK_SCHEMA_PATH.read_text(encoding="utf-8") == network_json_schema_text()

    def test_network_schema_names_the_fields(self) -> None:
        schema = network_json_schema()
        assert schema["$id"].endswith("/network.schema.json")
        assert set(schema["required"]) == {"network", "name", "coordinator"}
        assert {"locales", "members", "description"} <= set(schema["properties"])
        assert schema["additionalProperties"] is False

    def test_schema_names_the_fields(self) -> None:
        schema = agreement_json_schema()
        assert set(schema["required"]) >= {"agreement", "version", "parties", "purposes", "views"}
        assert {"network", "networks"} <= set(schema["properties"])
        permit_schema = schema["$defs"]["PermitDocument"]
        assert {"purposes", "legal_basis", "retention"} <= set(permit_schema["required"])
        assert permit_schema["additionalProperties"] is False
