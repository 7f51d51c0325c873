"""Judging listings: each rule refuses what it should, names itself and where it lives, and
nothing else. The rules are inline so a test shows the rule it exercises."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from exchange.listings.schemas import ListingIn
from exchange.rulebook.evaluate import VendorFacts, Violation, check_listing, checklist_for
from exchange.rulebook.load import decode_rulebook
from exchange.rulebook.model import Rulebook

CATALOGUE = """\
personal_data_requires_consent = true

[[categories]]
code = "transport"
name_zh = "交通出行"
name_en = "Transport"
requires_authorisation = false
personal = false

[[categories]]
code = "consumer"
name_zh = "消费"
name_en = "Consumer"
requires_authorisation = false
personal = true

[[categories]]
code = "biometric"
name_zh = "生物特征"
name_en = "Biometric"
requires_authorisation = true
personal = true

[[grades]]
code = "L1"
name_zh = "公开级"
name_en = "Public"
listable = true

[[grades]]
code = "L3"
name_zh = "敏感级"
name_en = "Sensitive"
listable = true

[[grades]]
code = "L4"
name_zh = "核心级"
name_en = "Core"
listable = false
"""

LISTING = """\
required = ["attestations.source", "attestations.rights", "schema"]
title_length_max = 40
description_length_min = 10
description_length_max = 200
licence_duration_days_max = 730

[plan_kinds]
L1 = ["fixed", "free", "metered"]
L3 = ["fixed", "metered"]

[vendors]
qualifications_any = []
allow_sponsored = true

[[checklist]]
id = "source-legality"
kind = "compliance"
text = "数据来源合法性 / Source legality"

[[checklist]]
id = "accuracy"
kind = "quality"
text = "准确性 / Accuracy"

[[checklist]]
id = "security-assessment"
kind = "compliance"
text = "安全评估 / Security assessment"
grades = ["L3"]

[[checklist]]
id = "biometric-authorisation"
kind = "compliance"
text = "专项授权 / Authorisation"
categories = ["biometric"]

[[checklist]]
id = "consent"
kind = "compliance"
text = "告知同意 / Consent"
personal_only = true

[[checklist]]
id = "sensitive-biometric"
kind = "quality"
text = "L3 生物特征样本质量 / L3 biometric sample quality"
categories = ["biometric"]
grades = ["L3"]
"""

VENDOR = VendorFacts(qualifications=frozenset())


def make_rulebook(catalogue: str = CATALOGUE, listing: str = LISTING) -> Rulebook:
    return decode_rulebook({"catalogue.toml": catalogue, "listing.toml": listing})


RULEBOOK = make_rulebook()


def make_listing(**overrides: Any) -> ListingIn:
    """A transport L1 listing the rules above accept; override fields to break one rule."""
    body: dict[str, Any] = {
        "title": "上海公交客流 Bus ridership",
        "description": "按线路、按小时汇总的公交刷卡客流。Hourly bus ridership by route.",
        "category": "transport",
        "grade": "L1",
        "delivery": "api",
        "schema": {"route": "string", "hour": "datetime", "riders": "integer"},
        "attestations": {
            "source": "Contract SH-BUS-2026-7 with the bus operator.",
            "rights": ["holding", "use"],
        },
        "licence": {"purposes": ["research"], "duration_days": 365},
        "plans": [{"kind": "fixed", "price": {"amount": 500_000, "currency": "CNY"}}],
    }
    body.update(overrides)
    return msgspec.convert(body, ListingIn)


def attestations(**overrides: Any) -> dict[str, Any]:
    return {"source": "Contract SH-BIO-2026-1.", "rights": ["holding"], **overrides}


def rules_of(violations: list[Violation]) -> list[str]:
    return [violation.rule for violation in violations]


def test_a_fully_valid_listing_has_no_violations() -> None:
    assert check_listing(RULEBOOK, make_listing(), VENDOR) == []


def test_biometric_data_without_an_authorisation_id_is_refused_naming_the_rule_and_its_place() -> (
    None
):
    listing = make_listing(category="biometric", attestations=attestations(consent="CONSENT-1"))
    assert check_listing(RULEBOOK, listing, VENDOR) == [
        Violation(
            "catalogue.categories.biometric.requires_authorisation",
            "Biometric (生物特征) data needs an authorisation to be traded: give its id in `attestations.authorisation_id`.",
            "catalogue.toml: categories[2].requires_authorisation",
        )
    ]


def test_biometric_data_with_an_authorisation_id_passes_that_rule() -> None:
    listing = make_listing(
        category="biometric",
        attestations=attestations(consent="CONSENT-1", authorisation_id="AUTH-9"),
    )
    assert check_listing(RULEBOOK, listing, VENDOR) == []


def test_a_blank_authorisation_id_counts_as_missing() -> None:
    listing = make_listing(
        category="biometric", attestations=attestations(consent="CONSENT-1", authorisation_id="  ")
    )
    assert rules_of(check_listing(RULEBOOK, listing, VENDOR)) == [
        "catalogue.categories.biometric.requires_authorisation"
    ]


def test_a_grade_that_is_not_listable_is_refused() -> None:
    violations = check_listing(RULEBOOK, make_listing(grade="L4"), VENDOR)
    assert rules_of(violations) == ["catalogue.grades.L4.listable"]
    assert violations[0].source == "catalogue.toml: grades[2].listable"


def test_unknown_category_and_grade_are_refused_and_their_dependent_rules_are_not_judged() -> None:
    violations = check_listing(RULEBOOK, make_listing(category="pets", grade="L9"), VENDOR)
    assert rules_of(violations) == ["catalogue.categories", "catalogue.grades"]
    assert "transport, consumer, biometric" in violations[0].message
    assert "L1, L3, L4" in violations[1].message


def test_personal_data_without_consent_is_refused() -> None:
    violations = check_listing(RULEBOOK, make_listing(personal_data=True), VENDOR)
    assert rules_of(violations) == ["catalogue.personal_data_requires_consent"]
    assert violations[0].source == "catalogue.toml: personal_data_requires_consent"
    with_consent = make_listing(personal_data=True, attestations=attestations(consent="CONSENT-1"))
    assert check_listing(RULEBOOK, with_consent, VENDOR) == []


def test_personal_data_needs_no_consent_when_the_operator_turns_the_setting_off() -> None:
    rulebook = make_rulebook(
        catalogue=CATALOGUE.replace(
            "personal_data_requires_consent = true", "personal_data_requires_consent = false"
        )
    )
    assert check_listing(rulebook, make_listing(personal_data=True), VENDOR) == []


def test_a_personal_category_needs_consent_even_when_the_vendor_declares_no_personal_data() -> None:
    violations = check_listing(
        RULEBOOK, make_listing(category="consumer", personal_data=False), VENDOR
    )
    assert rules_of(violations) == ["catalogue.categories.consumer.personal"]
    assert violations[0].source == "catalogue.toml: categories[1].personal"


def test_a_plan_kind_the_grade_does_not_allow_is_refused() -> None:
    plans = [{"kind": "free"}, {"kind": "fixed", "price": {"amount": 100, "currency": "CNY"}}]
    violations = check_listing(RULEBOOK, make_listing(grade="L3", plans=plans), VENDOR)
    assert rules_of(violations) == ["listing.plan_kinds.L3"]
    assert "free" in violations[0].message and "fixed, metered" in violations[0].message
    assert check_listing(RULEBOOK, make_listing(grade="L1", plans=plans), VENDOR) == []


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"attestations": {"rights": ["holding"]}}, "listing.required.attestations.source"),
        (
            {"attestations": {"source": "", "rights": ["holding"]}},
            "listing.required.attestations.source",
        ),
        (
            {"attestations": {"source": " \n", "rights": ["holding"]}},
            "listing.required.attestations.source",
        ),
        (
            {"attestations": {"source": "Contract 1", "rights": []}},
            "listing.required.attestations.rights",
        ),
        ({"schema": None}, "listing.required.schema"),
        ({"schema": {}}, "listing.required.schema"),
        ({"schema": ""}, "listing.required.schema"),
    ],
)
def test_a_required_field_that_is_none_blank_or_empty_is_refused(
    overrides: dict[str, Any], rule: str
) -> None:
    assert rules_of(check_listing(RULEBOOK, make_listing(**overrides), VENDOR)) == [rule]


def test_required_fields_are_named_with_their_place_in_listing_toml() -> None:
    violations = check_listing(RULEBOOK, make_listing(schema=None), VENDOR)
    assert violations[0].source == "listing.toml: required[2]"
    assert "`schema`" in violations[0].message


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"title": "长" * 41}, "listing.title_length_max"),
        ({"description": "太短 short"}, "listing.description_length_min"),
        ({"description": "x" * 201}, "listing.description_length_max"),
        (
            {"licence": {"purposes": ["research"], "duration_days": 731}},
            "listing.licence_duration_days_max",
        ),
    ],
)
def test_text_and_licence_limits_are_refused_past_their_bounds(
    overrides: dict[str, Any], rule: str
) -> None:
    assert rules_of(check_listing(RULEBOOK, make_listing(**overrides), VENDOR)) == [rule]


def test_text_and_licence_limits_accept_their_bounds() -> None:
    at_bounds = make_listing(
        title="长" * 40,
        description="x" * 10,
        licence={"purposes": ["research"], "duration_days": 730},
    )
    assert check_listing(RULEBOOK, at_bounds, VENDOR) == []
    assert check_listing(RULEBOOK, make_listing(description="x" * 200), VENDOR) == []


MERCHANTS_ONLY = LISTING.replace(
    "qualifications_any = []", 'qualifications_any = ["data-merchant"]'
)


@pytest.mark.parametrize(
    ("allow_sponsored", "vendor", "eligible"),
    [
        (True, VendorFacts(qualifications=frozenset()), False),
        (True, VendorFacts(qualifications=frozenset({"medical-licensed"})), False),
        (True, VendorFacts(qualifications=frozenset({"data-merchant"})), True),
        (False, VendorFacts(qualifications=frozenset({"data-merchant"})), True),
        (
            True,
            VendorFacts(
                qualifications=frozenset(), sponsor_qualifications=frozenset({"data-merchant"})
            ),
            True,
        ),
        (
            False,
            VendorFacts(
                qualifications=frozenset(), sponsor_qualifications=frozenset({"data-merchant"})
            ),
            False,
        ),
        (
            True,
            VendorFacts(
                qualifications=frozenset(),
                sponsor_qualifications=frozenset({"public-data-operator"}),
            ),
            False,
        ),
    ],
)
def test_vendor_eligibility_follows_qualifications_any_and_allow_sponsored(
    allow_sponsored: bool, vendor: VendorFacts, eligible: bool
) -> None:
    listing_rules = MERCHANTS_ONLY.replace(
        "allow_sponsored = true", f"allow_sponsored = {str(allow_sponsored).lower()}"
    )
    violations = check_listing(make_rulebook(listing=listing_rules), make_listing(), vendor)
    assert rules_of(violations) == ([] if eligible else ["listing.vendors.qualifications_any"])
    if not eligible:
        assert "data-merchant" in violations[0].message
        assert ("sponsored" in violations[0].message) is allow_sponsored


def test_any_vendor_may_list_when_no_qualification_is_asked() -> None:
    assert check_listing(RULEBOOK, make_listing(), VendorFacts(qualifications=frozenset())) == []


def test_every_violated_rule_is_reported_in_a_stable_order() -> None:
    listing = make_listing(
        category="biometric",
        grade="L3",
        title="长" * 41,
        schema=None,
        licence={"purposes": ["research"], "duration_days": 1000},
        attestations={"source": "Contract 1", "rights": ["holding"]},
        plans=[{"kind": "free"}],
    )
    vendor = VendorFacts(qualifications=frozenset())
    violations = check_listing(make_rulebook(listing=MERCHANTS_ONLY), listing, vendor)
    assert rules_of(violations) == [
        "listing.required.schema",
        "listing.title_length_max",
        "listing.licence_duration_days_max",
        "listing.plan_kinds.L3",
        "catalogue.categories.biometric.requires_authorisation",
        "catalogue.categories.biometric.personal",
        "listing.vendors.qualifications_any",
    ]
    assert check_listing(make_rulebook(listing=MERCHANTS_ONLY), listing, vendor) == violations
    assert all(violation.message and violation.source for violation in violations)


# The approval checklist


def item_ids(listing: ListingIn) -> list[str]:
    return [item.id for item in checklist_for(RULEBOOK, listing)]


def test_every_listing_gets_the_unfiltered_items() -> None:
    assert item_ids(make_listing()) == ["source-legality", "accuracy"]


def test_grade_filtered_items_are_asked_only_of_that_grade() -> None:
    assert item_ids(make_listing(grade="L3")) == [
        "source-legality",
        "accuracy",
        "security-assessment",
    ]


def test_category_filtered_items_are_asked_only_of_that_category() -> None:
    assert item_ids(make_listing(category="biometric", grade="L1")) == [
        "source-legality",
        "accuracy",
        "biometric-authorisation",
        "consent",
    ]


def test_items_filtered_by_category_and_grade_need_both() -> None:
    assert "sensitive-biometric" in item_ids(make_listing(category="biometric", grade="L3"))
    assert "sensitive-biometric" not in item_ids(make_listing(category="biometric", grade="L1"))
    assert "sensitive-biometric" not in item_ids(make_listing(category="transport", grade="L3"))


def test_personal_items_are_asked_of_personal_data_and_of_personal_categories() -> None:
    assert "consent" not in item_ids(make_listing())
    assert "consent" in item_ids(make_listing(personal_data=True))
    assert "consent" in item_ids(make_listing(category="consumer"))


def test_checklist_items_keep_their_kind_and_text() -> None:
    first = checklist_for(RULEBOOK, make_listing())[0]
    assert (first.id, first.kind, first.text) == (
        "source-legality",
        "compliance",
        "数据来源合法性 / Source legality",
    )
