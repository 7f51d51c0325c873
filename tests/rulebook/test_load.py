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
from exchange.rulebook.model import (
    OPTIONAL_RULE_FILES,
    RULE_FILES,
    AuctionPriceRule,
    ChecklistKind,
    FeeRules,
    Rulebook,
    SelfTrade,
    SettlementRules,
    TradingRules,
    Weekday,
)

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

TRADING = """\
[sessions]
timezone = "Asia/Shanghai"
days = ["mon", "tue", "wed", "thu", "fri"]
open = "09:30"
close = "15:00"
holidays = ["2026-10-01"]

[quota]
price_band_bps = 1000
tick_fen = 10
lot = 5
order_quantity_max = 500
order_lifetime_days_max = 7
self_trade = "cancel_maker"

[orders]
rate_per_minute_max = 10
quantity_max = 3

[auction]
price_rule = "n_plus_one"
duration_hours_max = 48
bid_quantity_max = 2

[[access]]
id = "sensitive"
categories = []
grades = ["L3"]
qualifications_any = ["sensitive-data-licensed"]
purposes_any = ["security"]
"""

FEES = """\
[[fees]]
plan_kind = "fixed"
buyer_bps = 10
vendor_bps = 100
minimum_fen = 50

[[fees.tiers]]
volume_from_fen = 1_000_000
vendor_bps = 80

[[fees.tiers]]
volume_from_fen = 5_000_000
buyer_bps = 0
vendor_bps = 50

[[fees]]
plan_kind = "free"
buyer_bps = 0
vendor_bps = 0
"""

SETTLEMENT = """\
delivery_confirm_hours = 48
auto_confirm = false
dispute_hours = 96
"""

FILES = {
    "catalogue.toml": CATALOGUE,
    "listing.toml": LISTING,
    "trading.toml": TRADING,
    "fees.toml": FEES,
    "settlement.toml": SETTLEMENT,
}
OLD_FILES = {"catalogue.toml": CATALOGUE, "listing.toml": LISTING}
"""A set as stored before the trading, fee and settlement files existed."""


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
    assert RULE_FILES == (
        "catalogue.toml",
        "listing.toml",
        "trading.toml",
        "fees.toml",
        "settlement.toml",
    )
    assert OPTIONAL_RULE_FILES == {"trading.toml", "fees.toml", "settlement.toml"}


def test_the_trading_fee_and_settlement_files_decode_into_typed_rules() -> None:
    rulebook = decode_rulebook(FILES)
    sessions = rulebook.trading.sessions
    assert (sessions.timezone, sessions.open, sessions.close) == ("Asia/Shanghai", "09:30", "15:00")
    assert sessions.days == [Weekday.mon, Weekday.tue, Weekday.wed, Weekday.thu, Weekday.fri]
    assert (sessions.open_minute(), sessions.close_minute()) == (570, 900)
    assert rulebook.trading.quota.self_trade is SelfTrade.cancel_maker
    assert rulebook.trading.auction.price_rule is AuctionPriceRule.n_plus_one
    assert [entry.id for entry in rulebook.trading.access] == ["sensitive"]
    fixed = rulebook.fees.schedule("fixed")
    assert fixed is not None and [tier.vendor_bps for tier in fixed.tiers] == [80, 50]
    assert fixed.tiers[0].buyer_bps is None  # left out: the schedule's rate
    assert rulebook.fees.schedule("auction") is None
    assert rulebook.settlement == SettlementRules(
        delivery_confirm_hours=48, auto_confirm=False, dispute_hours=96
    )


def test_a_set_stored_before_the_trading_files_existed_decodes_with_their_defaults() -> None:
    old = decode_rulebook(OLD_FILES)
    assert old.catalogue == decode_rulebook(FILES).catalogue
    assert old.trading == TradingRules() and old.fees == FeeRules()
    assert old.settlement == SettlementRules()
    # A missing file reads as an empty one: every default applies.
    empty = decode_rulebook(
        {**OLD_FILES, "trading.toml": "", "fees.toml": "", "settlement.toml": ""}
    )
    assert empty == old
    # The defaults name the shipped catalogue's medical and public categories, which this
    # catalogue lacks: entries nobody wrote are not refused, they match nothing.
    assert {code for entry in old.trading.access for code in entry.categories} == {
        "medical",
        "public",
    }
    assert old.catalogue.category("medical") is None
    written = decode_rulebook({**OLD_FILES, "trading.toml": "[orders]\nquantity_max = 5\n"})
    assert written.trading.access == old.trading.access
    assert written.trading.orders.quantity_max == 5
    # The hash is of the files given, so a stored set keeps the hash it was stored with.
    assert rulebook_hash(OLD_FILES) != rulebook_hash(
        {**OLD_FILES, "settlement.toml": "auto_confirm = true\n"}
    )


def test_a_set_may_leave_out_any_of_the_new_files_one_at_a_time() -> None:
    for name in ("trading.toml", "fees.toml", "settlement.toml"):
        files = {key: text for key, text in FILES.items() if key != name}
        rulebook = decode_rulebook(files)
        attribute = name.removesuffix(".toml")
        assert getattr(rulebook, attribute) == getattr(Rulebook(**_only_required()), attribute)


def _only_required() -> dict[str, Any]:
    whole = decode_rulebook(OLD_FILES)
    return {"catalogue": whole.catalogue, "listing": whole.listing}


def test_access_entries_an_operator_writes_must_name_catalogue_codes() -> None:
    written = edit(
        TRADING,
        'categories = []\ngrades = ["L3"]',
        'categories = ["medical"]\ngrades = ["L9"]',
    )
    errors = refusal({**FILES, "trading.toml": written})
    assert [(error["file"], error["key"], error["reason"]) for error in errors] == [
        ("trading.toml", "access[0].categories[0]", "no category 'medical' in catalogue.toml"),
        ("trading.toml", "access[0].grades[0]", "no grade 'L9' in catalogue.toml"),
    ]


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
        # trading.toml
        pytest.param(
            "trading.toml",
            'timezone = "Asia/Shanghai"',
            'timezone = "Asia/Shangai"',
            "sessions.timezone",
            r"unknown time zone 'Asia/Shangai'; use an IANA name",
            id="unknown time zone",
        ),
        pytest.param(
            "trading.toml",
            'timezone = "Asia/Shanghai"',
            'timezone = "../../etc/passwd"',
            "sessions.timezone",
            r"unknown time zone",
            id="time zone that is a path",
        ),
        pytest.param(
            "trading.toml",
            'close = "15:00"',
            'close = "09:00"',
            "sessions.close",
            r"09:00 is not after open \(09:30\); a session cannot span midnight",
            id="close before open",
        ),
        pytest.param(
            "trading.toml",
            'close = "15:00"',
            'close = "09:30"',
            "sessions.close",
            r"not after open",
            id="close at open",
        ),
        pytest.param(
            "trading.toml",
            'open = "09:30"',
            'open = "9:30"',
            "sessions.open",
            r"'9:30' is not a time \"HH:MM\"",
            id="bad time format",
        ),
        pytest.param(
            "trading.toml",
            'open = "09:30"',
            'open = "24:00"',
            "sessions.open",
            r"from \"00:00\" to \"23:59\"",
            id="open at the end of the day",
        ),
        pytest.param(
            "trading.toml",
            'close = "15:00"',
            'close = "25:00"',
            "sessions.close",
            r"'25:00' is not a time",
            id="hour out of range",
        ),
        pytest.param(
            "trading.toml",
            'close = "15:00"',
            "close = 15",
            "sessions.close",
            r"Expected `str`, got `int`",
            id="time not a string",
        ),
        pytest.param(
            "trading.toml",
            'days = ["mon", "tue", "wed", "thu", "fri"]',
            'days = ["mon", "tue", "fri", "tue"]',
            "sessions.days[3]",
            r"'tue' given twice; first at sessions.days\[1\]",
            id="day given twice",
        ),
        pytest.param(
            "trading.toml",
            'days = ["mon", "tue", "wed", "thu", "fri"]',
            'days = ["mon", "Tuesday"]',
            "sessions.days[1]",
            r"Invalid enum value 'Tuesday'",
            id="unknown day",
        ),
        pytest.param(
            "trading.toml",
            'holidays = ["2026-10-01"]',
            'holidays = ["2026-10-01", "2026-02-30"]',
            "sessions.holidays[1]",
            r"'2026-02-30' is not a date \"YYYY-MM-DD\"",
            id="holiday not a date",
        ),
        pytest.param(
            "trading.toml",
            'holidays = ["2026-10-01"]',
            'holidays = ["20261001"]',
            "sessions.holidays[0]",
            r"is not a date",
            id="holiday in another ISO form",
        ),
        pytest.param(
            "trading.toml",
            'self_trade = "cancel_maker"',
            'self_trade = "cancel_both"',
            "quota.self_trade",
            r"Invalid enum value 'cancel_both'",
            id="unknown self_trade",
        ),
        pytest.param(
            "trading.toml",
            'price_rule = "n_plus_one"',
            'price_rule = "vickrey"',
            "auction.price_rule",
            r"Invalid enum value 'vickrey'",
            id="unknown price_rule",
        ),
        pytest.param(
            "trading.toml",
            "price_band_bps = 1000",
            "price_band_bps = 10001",
            "quota.price_band_bps",
            r"Expected `int` <= 10000",
            id="band bps above 10000",
        ),
        pytest.param(
            "trading.toml",
            "tick_fen = 10",
            "tick_fen = -10",
            "quota.tick_fen",
            r"Expected `int` >= 1",
            id="negative tick",
        ),
        pytest.param(
            "trading.toml",
            "rate_per_minute_max = 10",
            "rate_per_minute_max = 0",
            "orders.rate_per_minute_max",
            r"Expected `int` >= 1",
            id="zero order rate",
        ),
        pytest.param(
            "trading.toml",
            "duration_hours_max = 48",
            "duration_hours_max = -1",
            "auction.duration_hours_max",
            r"Expected `int` >= 1",
            id="negative auction duration",
        ),
        pytest.param(
            "trading.toml",
            "lot = 5",
            "lots = 5",
            "quota.lots",
            r"unknown key `lots` \(did you mean `lot`\?\)",
            id="unknown trading key",
        ),
        pytest.param(
            "trading.toml",
            'qualifications_any = ["sensitive-data-licensed"]\npurposes_any = ["security"]\n',
            "",
            "access[0]",
            r"restricts nothing",
            id="access entry that restricts nothing",
        ),
        pytest.param(
            "trading.toml",
            'id = "sensitive"\n',
            "",
            "access[0].id",
            r"missing key `id`",
            id="access entry without id",
        ),
        pytest.param(
            "trading.toml",
            'purposes_any = ["security"]\n',
            'purposes_any = ["security"]\n\n[[access]]\nid = "sensitive"\nqualifications_any = ["x"]\n',
            "access[1].id",
            r"duplicate id 'sensitive'; first at access\[0\]",
            id="duplicate access id",
        ),
        # fees.toml
        pytest.param(
            "fees.toml",
            'plan_kind = "free"',
            'plan_kind = "fixed"',
            "fees[1].plan_kind",
            r"duplicate plan_kind 'fixed'; first at fees\[0\]",
            id="duplicate plan kind",
        ),
        pytest.param(
            "fees.toml",
            'plan_kind = "free"',
            'plan_kind = "barter"',
            "fees[1].plan_kind",
            r"unknown plan kind 'barter'; the kinds are fixed, free,",
            id="unknown fee plan kind",
        ),
        pytest.param(
            "fees.toml",
            "vendor_bps = 100",
            "vendor_bps = 10001",
            "fees[0].vendor_bps",
            r"Expected `int` <= 10000",
            id="bps above 10000",
        ),
        pytest.param(
            "fees.toml",
            "buyer_bps = 10",
            "buyer_bps = -1",
            "fees[0].buyer_bps",
            r"Expected `int` >= 0",
            id="negative bps",
        ),
        pytest.param(
            "fees.toml",
            "vendor_bps = 80",
            "vendor_bps = 20000",
            "fees[0].tiers[0].vendor_bps",
            r"Expected `int` <= 10000",
            id="tier bps above 10000",
        ),
        pytest.param(
            "fees.toml",
            "minimum_fen = 50",
            "minimum_fen = -50",
            "fees[0].minimum_fen",
            r"Expected `int` >= 0",
            id="negative minimum",
        ),
        pytest.param(
            "fees.toml",
            "volume_from_fen = 5_000_000",
            "volume_from_fen = 1_000_000",
            "fees[0].tiers[1].volume_from_fen",
            r"not above the previous tier's \(1000000\); tiers go by increasing volume",
            id="tiers not increasing",
        ),
        pytest.param(
            "fees.toml",
            "volume_from_fen = 1_000_000",
            "volume_from_fen = 0",
            "fees[0].tiers[0].volume_from_fen",
            r"Expected `int` >= 1",
            id="tier from zero volume",
        ),
        pytest.param(
            "fees.toml",
            "buyer_bps = 10\n",
            "",
            "fees[0].buyer_bps",
            r"missing key `buyer_bps`",
            id="fee without buyer rate",
        ),
        # settlement.toml
        pytest.param(
            "settlement.toml",
            "dispute_hours = 96",
            "dispute_hours = -1",
            "dispute_hours",
            r"Expected `int` >= 1",
            id="negative dispute window",
        ),
        pytest.param(
            "settlement.toml",
            "auto_confirm = false",
            'auto_confirm = "no"',
            "auto_confirm",
            r"Expected `bool`, got `str`",
            id="auto_confirm not a bool",
        ),
        pytest.param(
            "settlement.toml",
            "delivery_confirm_hours = 48",
            "delivery_confirm_hour = 48",
            "delivery_confirm_hour",
            r"unknown key `delivery_confirm_hour` \(did you mean `delivery_confirm_hours`\?\)",
            id="unknown settlement key",
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
    assert rulebook_hash(dict(reversed(FILES.items()))) == rulebook_hash(FILES)


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
