"""The rule files shipped in rules/: they decode, say what the exchange promises, and the
loader answers any mangling of them with a Rulebook or a RulebookInvalid, nothing else."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.errors import RulebookInvalid
from exchange.listings.schemas import PLAN_KINDS, ListingIn
from exchange.rulebook.evaluate import VendorFacts, check_listing, checklist_for
from exchange.rulebook.load import decode_rulebook, rulebook_hash
from exchange.rulebook.model import RULE_FILES, Category, ChecklistKind, Rulebook
from exchange.rulebook.trading import (
    OrderFacts,
    auction_price_rule,
    check_order,
    fee_for,
    in_session,
    price_band,
    self_trade_policy,
    settlement_windows,
)
from exchange.settings import shipped_rules_dir

SHIPPED = {name: (shipped_rules_dir() / name).read_text(encoding="utf-8") for name in RULE_FILES}
RULEBOOK = decode_rulebook(SHIPPED)
REQUIRED_CATEGORIES = (
    "transport",
    "finance",
    "medical",
    "geospatial",
    "enterprise",
    "consumer",
    "biometric",
)
CATEGORIES = tuple(category.code for category in RULEBOOK.catalogue.categories)
GRADES = tuple(grade.code for grade in RULEBOOK.catalogue.grades)


def category(code: str) -> Category:
    found = RULEBOOK.catalogue.category(code)
    assert found is not None, code
    return found


def make_listing(**overrides: Any) -> ListingIn:
    body: dict[str, Any] = {
        "title": "上海交通出行数据 Shanghai mobility OD matrix",
        "description": "全市地铁与公交刷卡出行起讫点矩阵，按小时汇总。Hourly origin-destination matrix of metro and bus trips.",
        "category": "transport",
        "grade": "L2",
        "delivery": "api",
        "schema": {"origin": "station id", "destination": "station id", "trips": "integer"},
        "attestations": {
            "source": "Contract SH-TR-2026-001 with the metro operator.",
            "rights": ["holding", "use"],
        },
        "licence": {"purposes": ["research"], "duration_days": 365},
        "plans": [{"kind": "fixed", "price": {"amount": 1_200_000, "currency": "CNY"}}],
    }
    body.update(overrides)
    return msgspec.convert(body, ListingIn)


def test_the_shipped_files_are_exactly_the_rule_files() -> None:
    assert sorted(path.name for path in shipped_rules_dir().glob("*.toml")) == sorted(RULE_FILES)
    assert isinstance(RULEBOOK, Rulebook)


def test_the_shipped_catalogue_has_the_required_categories_and_grades_in_both_languages() -> None:
    assert set(REQUIRED_CATEGORIES) <= set(CATEGORIES)
    assert all(entry.name_zh and entry.name_en for entry in RULEBOOK.catalogue.categories)
    assert (category("transport").name_zh, category("biometric").name_zh) == (
        "交通出行",
        "生物特征",
    )
    assert GRADES == ("L1", "L2", "L3", "L4")


def test_core_data_is_not_listable_and_the_other_grades_are() -> None:
    assert {grade.code: grade.listable for grade in RULEBOOK.catalogue.grades} == {
        "L1": True,
        "L2": True,
        "L3": True,
        "L4": False,
    }


def test_biometric_data_needs_an_authorisation_and_consent() -> None:
    biometric = category("biometric")
    assert biometric.requires_authorisation and biometric.personal
    assert [
        entry.code for entry in RULEBOOK.catalogue.categories if entry.requires_authorisation
    ] == ["biometric"]


def test_personal_categories_and_personal_data_need_consent() -> None:
    personal = {entry.code for entry in RULEBOOK.catalogue.categories if entry.personal}
    assert {"biometric", "consumer", "medical"} <= personal
    assert "transport" not in personal
    assert RULEBOOK.catalogue.personal_data_requires_consent is True


def test_public_authorised_categories_name_the_buyer_qualifications_trading_needs() -> None:
    assert category("medical").buyer_qualifications == ["medical-licensed"]
    assert category("public").buyer_qualifications == ["public-data-operator"]
    assert category("transport").buyer_qualifications == []


def test_sensitive_data_is_never_free_and_any_vendor_may_list() -> None:
    assert "free" not in RULEBOOK.listing.plan_kinds["L3"]
    assert set(RULEBOOK.listing.plan_kinds["L1"]) == set(PLAN_KINDS)
    assert RULEBOOK.listing.vendors.qualifications_any == []
    assert {"attestations.source", "attestations.rights", "schema"} <= set(
        RULEBOOK.listing.required
    )


def test_a_good_listing_passes_the_shipped_rules_and_core_data_does_not() -> None:
    vendor = VendorFacts(qualifications=frozenset())
    assert check_listing(RULEBOOK, make_listing(), vendor) == []
    assert [v.rule for v in check_listing(RULEBOOK, make_listing(grade="L4"), vendor)] == [
        "catalogue.grades.L4.listable"
    ]
    face = make_listing(
        category="biometric",
        grade="L3",
        attestations={"source": "Signed consent", "consent": "C-1", "rights": ["holding"]},
    )
    assert [v.rule for v in check_listing(RULEBOOK, face, vendor)] == [
        "catalogue.categories.biometric.requires_authorisation"
    ]


@pytest.mark.parametrize(
    ("code", "grade", "personal"), list(itertools.product(CATEGORIES, GRADES, (False, True)))
)
def test_every_listing_is_asked_about_source_legality_and_quality(
    code: str, grade: str, personal: bool
) -> None:
    items = checklist_for(
        RULEBOOK, make_listing(category=code, grade=grade, personal_data=personal)
    )
    assert any(
        item.kind == ChecklistKind.compliance and "Source legality" in item.text for item in items
    ), items
    assert any(item.kind == ChecklistKind.quality for item in items), items


def test_sensitive_grades_categories_and_personal_data_are_asked_more() -> None:
    def count(**overrides: Any) -> int:
        return len(checklist_for(RULEBOOK, make_listing(**overrides)))

    plain = count(category="transport", grade="L1")
    assert count(category="medical", grade="L3") > plain
    for code in CATEGORIES:
        l3, l2 = count(category=code, grade="L3"), count(category=code, grade="L2")
        assert l3 > l2 >= count(category=code, grade="L1"), code
        assert count(category=code, personal_data=True) >= count(category=code)
    for sensitive in ("medical", "biometric", "finance"):
        assert count(category=sensitive, grade="L1") > plain, sensitive
    assert count(category="transport", grade="L1", personal_data=True) > plain


# Trading, fees and settlement

def buy(**overrides: Any) -> OrderFacts:
    facts = OrderFacts(
        category="transport",
        grade="L2",
        plan_kind="fixed",
        side="buy",
        order_type=None,
        price_fen=None,
        quantity=1,
        reference_price_fen=None,
        buyer_qualifications=frozenset(),
        purpose="research",
        at=datetime(2026, 6, 3, 2, 0, tzinfo=UTC),
        expires_at=None,
        orders_last_minute=0,
    )
    return dataclasses.replace(facts, **overrides)


def test_a_set_without_the_trading_files_means_exactly_the_shipped_files() -> None:
    # Rule sets stored before these files existed decode with the shipped files' semantics.
    old = decode_rulebook({name: SHIPPED[name] for name in ("catalogue.toml", "listing.toml")})
    assert old.trading == RULEBOOK.trading
    assert old.fees == RULEBOOK.fees
    assert old.settlement == RULEBOOK.settlement
    assert old == RULEBOOK


@settings(max_examples=200)
@given(st.datetimes(timezones=st.timezones()))
def test_the_shipped_sessions_trade_around_the_clock(at: datetime) -> None:
    sessions = RULEBOOK.trading.sessions
    assert (sessions.timezone, sessions.open, sessions.close) == ("Asia/Shanghai", "00:00", "24:00")
    assert len(sessions.days) == 7 and sessions.holidays == []
    assert in_session(RULEBOOK, at)
    assert check_order(RULEBOOK, buy(at=at)) == []


def test_sensitive_medical_data_goes_to_licensed_researchers_only() -> None:
    licensed = frozenset({"medical-licensed"})
    medical = {"category": "medical", "grade": "L3"}
    assert check_order(RULEBOOK, buy(**medical, buyer_qualifications=licensed)) == []
    assert [v.rule for v in check_order(RULEBOOK, buy(**medical, buyer_qualifications=licensed, purpose="clinical-care"))] == [
        "trading.access.medical-sensitive.purposes_any"
    ]
    assert [v.rule for v in check_order(RULEBOOK, buy(**medical))] == [
        "catalogue.categories.medical.buyer_qualifications",
        "trading.access.medical-sensitive.qualifications_any",
    ]
    # Less sensitive medical data: the catalogue's purposes, not the access entry's.
    assert check_order(RULEBOOK, buy(category="medical", grade="L2", buyer_qualifications=licensed, purpose="clinical-care")) == []
    # A vendor selling is not asked who buys.
    assert check_order(RULEBOOK, buy(**medical, side="sell", plan_kind="quota")) == []


def test_public_data_goes_to_public_data_operators_only() -> None:
    assert [v.rule for v in check_order(RULEBOOK, buy(category="public", grade="L1"))] == [
        "catalogue.categories.public.buyer_qualifications",
        "trading.access.public-data.qualifications_any",
    ]
    operator = frozenset({"public-data-operator"})
    assert check_order(RULEBOOK, buy(category="public", grade="L1", buyer_qualifications=operator)) == []


def test_the_shipped_quota_auction_and_order_limits() -> None:
    quota = RULEBOOK.trading.quota
    assert (quota.price_band_bps, quota.tick_fen, quota.lot) == (2_000, 1, 1)
    assert price_band(RULEBOOK, 10_000) == (8_000, 12_000)
    assert self_trade_policy(RULEBOOK) == "cancel_taker"
    assert auction_price_rule(RULEBOOK) == "nth" and RULEBOOK.trading.auction.bid_quantity_max == 1
    assert RULEBOOK.trading.orders.rate_per_minute_max > 0


def test_the_shipped_fees_charge_vendors_one_percent_and_half_that_above_a_monthly_volume() -> None:
    assert {schedule.plan_kind for schedule in RULEBOOK.fees.fees} == set(PLAN_KINDS)
    for kind in ("fixed", "subscription", "quota", "auction"):
        assert fee_for(RULEBOOK, kind, 1_000_000, 0, 0) == (0, 10_000), kind
        assert fee_for(RULEBOOK, kind, 1_000_000, 0, 10_000_000) == (0, 5_000), kind
        assert fee_for(RULEBOOK, kind, 1_000, 0, 0) == (0, 100), kind  # the minimum, 1 yuan
    assert fee_for(RULEBOOK, "free", 1_000_000, 0, 0) == (0, 0)


def test_the_shipped_settlement_windows() -> None:
    assert settlement_windows(RULEBOOK) == (timedelta(hours=72), True, timedelta(hours=168))


def test_a_broken_shipped_file_is_refused_at_the_key_an_operator_edited() -> None:
    # Operators (and tests elsewhere) break L4's flag by editing its first `listable = false`.
    broken = {
        **SHIPPED,
        "catalogue.toml": SHIPPED["catalogue.toml"].replace(
            "listable = false", 'listable = "no"', 1
        ),
    }
    with pytest.raises(RulebookInvalid) as raised:
        decode_rulebook(broken)
    assert raised.value.extensions["errors"] == [
        {
            "file": "catalogue.toml",
            "key": "grades[3].listable",
            "reason": "Expected `bool`, got `str`",
        }
    ]


def test_the_shipped_hash_is_stable() -> None:
    assert rulebook_hash(SHIPPED) == rulebook_hash(dict(reversed(SHIPPED.items())))
    assert len(rulebook_hash(SHIPPED)) == 64


# Whatever an operator's editor or a client does to the text, the loader answers with a
# Rulebook or with RulebookInvalid naming known files; never with another exception.

TOML_CHARACTERS = st.sampled_from(
    list("[]{}=\".,#\n'\\ -_0123456789aeLtfrsu")
    + ["true", "false", '"""', "'''", "\x00", "\ud800", "字"]
)


@st.composite
def mangled_text(draw: st.DrawFn, text: str) -> str:
    if draw(st.integers(0, 9)) == 0:  # now and then, bytes from anywhere decoded as text
        return draw(st.binary(max_size=400)).decode(
            draw(st.sampled_from(["latin-1", "utf-8"])), errors="replace"
        )
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, len(text)))
        end = min(len(text), start + draw(st.integers(0, 8)))
        replacement = "".join(draw(st.lists(TOML_CHARACTERS | st.characters(), max_size=4)))
        match draw(st.sampled_from(["insert", "delete", "replace"])):
            case "insert":
                text = text[:start] + replacement + text[start:]
            case "delete":
                text = text[:start] + text[end:]
            case _:
                text = text[:start] + replacement + text[end:]
    return text


@st.composite
def mangled_files(draw: st.DrawFn) -> dict[str, str]:
    files = dict(SHIPPED)
    for name in draw(st.lists(st.sampled_from(RULE_FILES), min_size=1, max_size=2, unique=True)):
        files[name] = draw(mangled_text(files[name]))
    if draw(st.integers(0, 9)) == 0:
        del files[draw(st.sampled_from(RULE_FILES))]
    if draw(st.integers(0, 9)) == 0:
        files["extra.toml"] = draw(mangled_text("a = 1\n"))
    return files


@settings(max_examples=300, deadline=None)
@given(mangled_files())
def test_mangled_rule_files_give_a_rulebook_or_a_refusal_naming_file_key_and_reason(
    files: dict[str, str],
) -> None:
    try:
        decode_rulebook(files)
    except RulebookInvalid as refusal:
        assert_names_file_key_and_reason(refusal.extensions["errors"], files)
    else:
        rulebook_hash(files)  # a set that decodes can be hashed


def assert_names_file_key_and_reason(errors: list[dict[str, Any]], files: dict[str, str]) -> None:
    """A refusal's errors: at least one, each naming a file of the set (or a rule file it lacks),
    a key and a reason, and nothing else."""
    assert errors, files.keys()
    for error in errors:
        assert set(error) == {"file", "key", "reason"}, error
        assert error["file"] in files or error["file"] in RULE_FILES, error
        assert isinstance(error["key"], str), error
        assert isinstance(error["reason"], str) and error["reason"].strip(), error


def value_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path to every value, table and array in a decoded TOML document."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from value_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from value_paths(item, (*path, index))


def value_at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


# What an operator might type by mistake, put in place of every value of every shipped file in
# turn: a zone, a time or a date that does not exist, numbers out of range or as text, the wrong
# type. The fuzzing above draws at random and may never put "Asia/Nowhere" at a time zone; this
# tries each typo at each key.
TYPOS: tuple[Any, ...] = ("Asia/Nowhere", "25:61", "2026-13-45", "", "NaN", "数据", -1, 0, 10**15 + 1, 1.5, True, [], {})


def test_every_shipped_value_replaced_by_a_typo_gives_a_rulebook_or_a_refusal_naming_file_key_and_reason() -> None:
    tried = 0
    for name in RULE_FILES:
        document = tomllib.loads(SHIPPED[name])
        for path in value_paths(document):
            for typo in TYPOS:
                changed = copy.deepcopy(document)
                value_at(changed, path[:-1])[path[-1]] = typo
                files = {**SHIPPED, name: tomli_w.dumps(changed)}
                try:
                    decode_rulebook(files)
                except RulebookInvalid as refusal:
                    assert_names_file_key_and_reason(refusal.extensions["errors"], files)
                except Exception as crash:  # noqa: BLE001 - any other exception is the failure this test looks for
                    pytest.fail(f"{name} with {'.'.join(map(str, path))} = {typo!r}: {type(crash).__name__}: {crash}")
                tried += 1
    assert tried > 2_000  # every key of every file, not a few
