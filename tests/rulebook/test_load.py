"""Decoding rule sets: a valid set becomes a Rulebook; a broken one is refused whole, every
error naming file, key and reason. Rule texts are inline so each test shows what it breaks."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from exchange.core.errors import RulebookInvalid
from exchange.rulebook.load import RuleError, decode_rulebook, format_errors, rulebook_hash
from exchange.rulebook.model import RULE_FILES, ChecklistKind, Rulebook

CATALOGUE = """\
# The catalogue of a small test exchange.
personal_data_requires_consent = true

[[categories]]
code = "transport"
name_zh = "交通出行"
name_en = "Transport"
requires_authorisation = false
personal = false

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
required = ["attestations.source", "schema"]
title_length_max = 100
description_length_min = 10
description_length_max = 1000
licence_duration_days_max = 365

[plan_kinds]
L1 = ["fixed", "free"]
L3 = ["fixed"]

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
"""

FILES = {"catalogue.toml": CATALOGUE, "listing.toml": LISTING}


def edit(text: str, old: str, new: str) -> str:
    """`text` with its first `old` replaced; fails when `old` is absent, so a test cannot
    quietly stop breaking what it means to break."""
    assert old in text, old
    return text.replace(old, new, 1)


def refusal(files: dict[str, str]) -> list[dict[str, str]]:
    with pytest.raises(RulebookInvalid) as raised:
        decode_rulebook(files)
    assert raised.value.code == "rulebook_invalid"
    errors: list[dict[str, str]] = raised.value.extensions["errors"]
    assert errors, "a refusal names at least one error"
    return errors


def test_a_valid_set_decodes_into_typed_rules_with_lookups() -> None:
    rulebook = decode_rulebook(FILES)
    assert isinstance(rulebook, Rulebook)
    biometric = rulebook.catalogue.category("biometric")
    assert (
        biometric is not None
        and biometric.requires_authorisation
        and biometric.buyer_qualifications == []
    )
    assert rulebook.catalogue.category("pets") is None
    l4 = rulebook.catalogue.grade("L4")
    assert l4 is not None and l4.listable is False
    assert rulebook.catalogue.grade("L9") is None
    assert rulebook.listing.plan_kinds["L3"] == ["fixed"]
    assert [item.kind for item in rulebook.listing.checklist] == [
        ChecklistKind.compliance,
        ChecklistKind.quality,
    ]
    assert RULE_FILES == ("catalogue.toml", "listing.toml")


def test_defaults_apply_to_keys_an_operator_leaves_out() -> None:
    listing = edit(
        edit(LISTING, "[vendors]\nqualifications_any = []\nallow_sponsored = true\n", ""),
        'required = ["attestations.source", "schema"]\n',
        "",
    )
    rulebook = decode_rulebook(
        {
            "catalogue.toml": edit(CATALOGUE, "personal_data_requires_consent = true\n", ""),
            "listing.toml": listing,
        }
    )
    assert rulebook.catalogue.personal_data_requires_consent is True
    assert (
        rulebook.listing.vendors.qualifications_any == []
        and rulebook.listing.vendors.allow_sponsored is True
    )
    assert rulebook.listing.required == []


@pytest.mark.parametrize(
    ("file", "old", "new", "key", "reason"),
    [
        pytest.param(
            "listing.toml",
            "[plan_kinds]",
            "[[[plan_kinds",
            "",
            r"not valid TOML: .*line 7, column 3",
            id="syntax error",
        ),
        pytest.param(
            "catalogue.toml",
            "listable = false",
            'listable = "yes"',
            "grades[2].listable",
            r"Expected `bool`, got `str`",
            id="wrong type",
        ),
        pytest.param(
            "catalogue.toml",
            "listable = false",
            "listabel = false",
            "grades[2].listabel",
            r"unknown key `listabel` \(did you mean `listable`\?\)",
            id="unknown key",
        ),
        pytest.param(
            "catalogue.toml",
            "personal = true\n",
            "",
            "categories[1].personal",
            r"missing key `personal`",
            id="missing key",
        ),
        pytest.param(
            "catalogue.toml",
            "personal_data_requires_consent = true",
            "colour = 1",
            "colour",
            r"unknown key `colour`",
            id="unknown top-level key",
        ),
        pytest.param(
            "listing.toml",
            'L3 = ["fixed"]',
            'L3 = ["fixed", "barter"]',
            "plan_kinds.L3[1]",
            r"unknown plan kind 'barter'; the kinds are fixed, free,",
            id="unknown plan kind",
        ),
        pytest.param(
            "listing.toml",
            'L3 = ["fixed"]',
            "L3 = []",
            "plan_kinds.L3",
            r"no plan kinds",
            id="empty plan kinds",
        ),
        pytest.param(
            "listing.toml",
            'L3 = ["fixed"]',
            'L3 = ["fixed"]\nL7 = ["fixed"]',
            "plan_kinds.L7",
            r"no grade 'L7' in catalogue.toml",
            id="plan kinds of an undefined grade",
        ),
        pytest.param(
            "listing.toml",
            'L3 = ["fixed"]\n',
            "",
            "plan_kinds",
            r"grade 'L3' is listable in catalogue.toml but has no plan kinds",
            id="listable grade without plan kinds",
        ),
        pytest.param(
            "listing.toml",
            '"schema"]',
            '"schema", "attestations.sauce"]',
            "required[2]",
            r"no listing field 'attestations.sauce'; known fields are .*attestations.source",
            id="unknown required field",
        ),
        pytest.param(
            "listing.toml",
            'id = "accuracy"',
            'id = "source-legality"',
            "checklist[1].id",
            r"duplicate id 'source-legality'; first at checklist\[0\]",
            id="duplicate checklist id",
        ),
        pytest.param(
            "listing.toml",
            'kind = "quality"',
            'kind = "opinion"',
            "checklist[1].kind",
            r"Invalid enum value 'opinion'",
            id="unknown checklist kind",
        ),
        pytest.param(
            "listing.toml",
            'text = "准确性 / Accuracy"',
            'text = "准确性 / Accuracy"\ncategories = ["pets"]',
            "checklist[1].categories[0]",
            r"no category 'pets' in catalogue.toml",
            id="checklist category undefined",
        ),
        pytest.param(
            "listing.toml",
            'text = "准确性 / Accuracy"',
            'text = "准确性 / Accuracy"\ngrades = ["L9"]',
            "checklist[1].grades[0]",
            r"no grade 'L9' in catalogue.toml",
            id="checklist grade undefined",
        ),
        pytest.param(
            "listing.toml",
            "description_length_min = 10",
            "description_length_min = 2000",
            "description_length_min",
            r"greater than description_length_max \(1000\)",
            id="minimum above maximum",
        ),
        pytest.param(
            "listing.toml",
            "title_length_max = 100",
            "title_length_max = 0",
            "title_length_max",
            r"Expected `int` >= 1",
            id="limit out of range",
        ),
        pytest.param(
            "catalogue.toml",
            'code = "biometric"',
            'code = "transport"',
            "categories[1].code",
            r"duplicate code 'transport'; first at categories\[0\]",
            id="duplicate category code",
        ),
        pytest.param(
            "catalogue.toml",
            'code = "L4"',
            'code = "L1"',
            "grades[2].code",
            r"duplicate code 'L1'; first at grades\[0\]",
            id="duplicate grade code",
        ),
    ],
)
def test_a_broken_file_is_refused_naming_file_key_and_reason(
    file: str, old: str, new: str, key: str, reason: str
) -> None:
    errors = refusal({**FILES, file: edit(FILES[file], old, new)})
    assert [(error["file"], error["key"]) for error in errors] == [(file, key)], errors
    assert re.search(reason, errors[0]["reason"]), errors[0]["reason"]


def test_a_missing_file_and_an_unknown_file_are_refused() -> None:
    errors = refusal({"listing.toml": LISTING, "colours.toml": "red = 1"})
    assert [(error["file"], error["key"]) for error in errors] == [
        ("catalogue.toml", ""),
        ("colours.toml", ""),
    ]
    assert "missing" in errors[0]["reason"]
    assert (
        "not a rule file" in errors[1]["reason"]
        and "catalogue.toml, listing.toml" in errors[1]["reason"]
    )


def test_errors_from_every_file_are_reported_at_once() -> None:
    files = {
        "catalogue.toml": edit(
            edit(CATALOGUE, 'code = "L4"', 'code = "L1"'),
            'code = "biometric"',
            'code = "transport"',
        ),
        "listing.toml": "[[[ not toml",
    }
    errors = refusal(files)
    assert [(error["file"], error["key"]) for error in errors] == [
        ("catalogue.toml", "categories[1].code"),
        ("catalogue.toml", "grades[2].code"),
        ("listing.toml", ""),
    ]
    assert all(error["reason"] for error in errors)


def test_one_file_that_does_not_decode_still_lets_the_others_own_checks_run() -> None:
    files = {
        "catalogue.toml": "[[[",
        "listing.toml": edit(LISTING, 'L3 = ["fixed"]', 'L3 = ["barter"]'),
    }
    errors = refusal(files)
    assert [(error["file"], error["key"]) for error in errors] == [
        ("catalogue.toml", ""),
        ("listing.toml", "plan_kinds.L3[0]"),
    ]


def test_the_refusal_detail_summarises_the_errors() -> None:
    with pytest.raises(RulebookInvalid) as raised:
        decode_rulebook({"catalogue.toml": CATALOGUE, "listing.toml": "[[["})
    assert raised.value.detail.startswith(
        "The rule set has 1 error(s): listing.toml: (file): not valid TOML"
    )


def test_deeply_nested_or_dotted_text_is_refused_quickly() -> None:
    for text in ("a = " + "[" * 5000, "a = " + "{b = " * 5000, "a" + ".a" * 5_000 + " = 1"):
        errors = refusal({**FILES, "listing.toml": text})
        assert [(error["file"], error["key"]) for error in errors] == [("listing.toml", "")]
    dotted = refusal({**FILES, "listing.toml": "x = 1\n" + "a" + ".a" * 40 + " = 1"})
    assert "line 2 has more than 32 dots" in dotted[0]["reason"]


def test_text_that_is_not_utf8_is_refused_with_its_line() -> None:
    errors = refusal(
        {**FILES, "catalogue.toml": edit(CATALOGUE, 'name_en = "Biometric"', 'name_en = "\udc80"')}
    )
    assert [(error["file"], error["key"]) for error in errors] == [("catalogue.toml", "")]
    assert errors[0]["reason"] == "not UTF-8 text: surrogates not allowed on line 14"


def test_format_errors_gives_one_line_per_error() -> None:
    errors = [
        RuleError("catalogue.toml", "grades[3].listable", "Expected `bool`, got `str`"),
        RuleError("listing.toml", "", "not valid TOML"),
    ]
    expected = "catalogue.toml: grades[3].listable: Expected `bool`, got `str`\nlisting.toml: (file): not valid TOML"
    assert format_errors(errors) == expected
    assert format_errors([msgspec.structs.asdict(error) for error in errors]) == expected


# The hash


def test_hash_ignores_comments_white_space_and_key_order() -> None:
    reordered = (
        CATALOGUE.replace("# The catalogue of a small test exchange.\n", "")
        .replace(
            'name_zh = "交通出行"\nname_en = "Transport"',
            'name_en   =   "Transport"   # English\nname_zh = "交通出行"',
        )
        .replace("\n\n", "\n\n\n")
    )
    assert reordered != CATALOGUE
    assert rulebook_hash({**FILES, "catalogue.toml": reordered}) == rulebook_hash(FILES)
    assert rulebook_hash({"listing.toml": LISTING, "catalogue.toml": CATALOGUE}) == rulebook_hash(
        FILES
    )


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("catalogue.toml", "listable = true", "listable = false"),
        ("catalogue.toml", 'name_en = "Transport"', 'name_en = "Transport "'),
        ("listing.toml", 'L1 = ["fixed", "free"]', 'L1 = ["free", "fixed"]'),  # order is meaningful
        ("listing.toml", "title_length_max = 100", "title_length_max = 101"),
    ],
)
def test_hash_changes_when_a_value_changes(file: str, old: str, new: str) -> None:
    changed = {**FILES, file: edit(FILES[file], old, new)}
    decode_rulebook(changed)
    assert rulebook_hash(changed) != rulebook_hash(FILES)


def test_hash_is_sha256_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", rulebook_hash(FILES))


def _shuffled(value: Any, draw: Any) -> Any:
    """`value` with every table's keys in an order hypothesis picks."""
    if isinstance(value, dict):
        keys = draw(st.permutations(sorted(value)))
        return {key: _shuffled(value[key], draw) for key in keys}
    if isinstance(value, list):
        return [_shuffled(item, draw) for item in value]
    return value


@given(st.data())
def test_hash_is_the_same_for_any_key_order(data: st.DataObject) -> None:
    files = {
        name: tomli_w.dumps(_shuffled(msgspec.toml.decode(text), data.draw))
        for name, text in FILES.items()
    }
    decode_rulebook(files)
    assert rulebook_hash(files) == rulebook_hash(FILES)
