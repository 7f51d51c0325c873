"""Judging orders, working out fees and reading settlement windows by a rulebook: each rule
refuses what it should, names itself and where it lives, and nothing else. The rules are inline
so a test shows the rule it exercises."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.errors import RulebookInvalid
from exchange.rulebook.evaluate import Violation
from exchange.rulebook.load import decode_rulebook, rulebook_hash
from exchange.rulebook.model import WEEKDAYS, FeeRules, FeeSchedule, FeeTier, Rulebook
from exchange.rulebook.trading import (
    OrderFacts,
    auction_price_rule,
    check_auction,
    check_order,
    fee_for,
    in_session,
    price_band,
    self_trade_policy,
    settlement_windows,
)
from exchange.settings import shipped_rules_dir

CATALOGUE = """\
[[categories]]
code = "transport"
name_zh = "交通出行"
name_en = "Transport"
requires_authorisation = false
personal = false

[[categories]]
code = "medical"
name_zh = "医疗健康"
name_en = "Medical"
requires_authorisation = false
personal = true
buyer_qualifications = ["medical-licensed"]
buyer_purposes = ["research", "public-health"]

[[categories]]
code = "public"
name_zh = "公共数据"
name_en = "Public data"
requires_authorisation = false
personal = false
buyer_qualifications = ["public-data-operator"]

[[grades]]
code = "L1"
name_zh = "公开级"
name_en = "Public"
listable = true

[[grades]]
code = "L2"
name_zh = "一般级"
name_en = "General"
listable = true

[[grades]]
code = "L3"
name_zh = "敏感级"
name_en = "Sensitive"
listable = true
"""

LISTING = """\
title_length_max = 100
description_length_min = 10
description_length_max = 1000
licence_duration_days_max = 365

[plan_kinds]
L1 = ["fixed", "quota", "auction"]
L2 = ["fixed", "quota", "auction"]
L3 = ["fixed", "quota", "auction"]
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
id = "medical-sensitive"
categories = ["medical"]
grades = ["L3"]
qualifications_any = ["medical-licensed"]
purposes_any = ["research"]

[[access]]
id = "public-data"
categories = ["public"]
qualifications_any = ["public-data-operator"]
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
RULES = decode_rulebook(FILES)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(day: str, hours_minutes: str) -> datetime:
    """A wall-clock time in Shanghai, as the aware UTC datetime callers pass."""
    local = datetime.combine(date.fromisoformat(day), time.fromisoformat(hours_minutes), SHANGHAI)
    return local.astimezone(UTC)


WEDNESDAY_10 = shanghai("2026-06-03", "10:00")


def order(**overrides: Any) -> OrderFacts:
    """A limit buy on a transport quota book that every rule accepts."""
    facts = OrderFacts(
        category="transport",
        grade="L1",
        plan_kind="quota",
        side="buy",
        order_type="limit",
        price_fen=1_000,
        quantity=5,
        reference_price_fen=1_000,
        buyer_qualifications=frozenset(),
        purpose="research",
        at=WEDNESDAY_10,
        expires_at=WEDNESDAY_10 + timedelta(days=1),
        orders_last_minute=0,
    )
    return dataclasses.replace(facts, **overrides)


def refused(rulebook: Rulebook, facts: OrderFacts) -> list[tuple[str, str]]:
    violations = check_order(rulebook, facts)
    assert all(isinstance(v, Violation) and v.message for v in violations)
    return [(v.rule, v.source) for v in violations]


def with_fees(*schedules: FeeSchedule) -> Rulebook:
    return msgspec.structs.replace(RULES, fees=FeeRules(fees=list(schedules)))


def test_an_order_within_every_rule_passes() -> None:
    assert check_order(RULES, order()) == []


# Sessions


@pytest.mark.parametrize(
    ("at", "source"),
    [
        pytest.param(shanghai("2026-06-06", "10:00"), "trading.toml: sessions.days", id="saturday"),
        pytest.param(shanghai("2026-06-03", "09:29"), "trading.toml: sessions.open", id="before open"),
        pytest.param(shanghai("2026-06-03", "15:00"), "trading.toml: sessions.close", id="at close"),
        pytest.param(shanghai("2026-06-03", "23:59"), "trading.toml: sessions.close", id="late"),
        # 02:00 UTC on Wednesday is 10:00 in Shanghai, but 23:00 UTC on Tuesday is 07:00 on
        # Wednesday there: the session's zone decides, not UTC.
        pytest.param(datetime(2026, 6, 2, 23, 0, tzinfo=UTC), "trading.toml: sessions.open", id="zone"),
    ],
)
def test_orders_outside_the_session_are_refused(at: datetime, source: str) -> None:
    assert refused(RULES, order(at=at)) == [("trading.sessions", source)]
    assert not in_session(RULES, at)


def test_the_session_opens_at_open_and_closes_just_before_close() -> None:
    assert in_session(RULES, shanghai("2026-06-03", "09:30"))
    assert in_session(RULES, shanghai("2026-06-03", "14:59"))
    assert in_session(RULES, datetime(2026, 6, 3, 2, 0, tzinfo=UTC))
    assert in_session(RULES, shanghai("2026-06-03", "09:30").astimezone(ZoneInfo("America/New_York")))


def test_the_session_is_judged_by_the_rulebook_in_hand_at_the_same_instant() -> None:
    # check_order remembers the session's verdict for the latest instant (the desk checks a
    # batch's orders at one): another rulebook at that instant must get its own.
    at = shanghai("2026-06-06", "10:00")  # a Saturday
    every_day = msgspec.structs.replace(RULES, trading=msgspec.structs.replace(
        RULES.trading, sessions=msgspec.structs.replace(RULES.trading.sessions, days=list(WEEKDAYS))))
    assert refused(RULES, order(at=at)) == [("trading.sessions", "trading.toml: sessions.days")]
    assert refused(every_day, order(at=at)) == []
    assert refused(RULES, order(at=at)) == [("trading.sessions", "trading.toml: sessions.days")]
    assert refused(RULES, order(at=at + timedelta(days=2))) == []


def test_a_holiday_is_refused_by_its_own_rule_from_its_local_midnight() -> None:
    holiday = shanghai("2026-10-01", "10:00")  # a Thursday
    assert refused(RULES, order(at=holiday)) == [("trading.sessions.holidays", "trading.toml: sessions.holidays[0]")]
    assert not in_session(RULES, holiday)
    around_the_clock = msgspec.structs.replace(
        RULES.trading.sessions, days=list(RULES.trading.sessions.days) + ["sat", "sun"], open="00:00", close="24:00"
    )
    always = msgspec.structs.replace(RULES, trading=msgspec.structs.replace(RULES.trading, sessions=around_the_clock))
    # 2026-09-30 16:00 UTC is already 1 October in Shanghai.
    assert not in_session(always, datetime(2026, 9, 30, 16, 0, tzinfo=UTC))
    assert in_session(always, datetime(2026, 9, 30, 15, 59, tzinfo=UTC))
    assert in_session(always, shanghai("2026-10-02", "00:00"))


def test_naive_times_are_a_callers_mistake() -> None:
    with pytest.raises(ValueError, match="aware"):
        check_order(RULES, order(at=datetime(2026, 6, 3, 10, 0)))
    with pytest.raises(ValueError, match="aware"):
        check_order(RULES, order(expires_at=datetime(2026, 6, 4, 10, 0)))
    with pytest.raises(ValueError, match="aware"):
        in_session(RULES, datetime(2026, 6, 3, 10, 0))


@pytest.mark.parametrize("overrides", [{"side": "BUY"}, {"side": ""}, {"order_type": "stop"}])
def test_facts_no_order_has_are_a_callers_mistake_not_a_sell(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="side|order_type"):
        check_order(RULES, order(category="medical", grade="L3", **overrides))


# Continuous books, orders and auctions


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"price_fen": 1_110},
            [("trading.quota.price_band", "trading.toml: quota.price_band_bps")],
            id="above the band",
        ),
        pytest.param(
            {"price_fen": 890},
            [("trading.quota.price_band", "trading.toml: quota.price_band_bps")],
            id="below the band",
        ),
        pytest.param(
            {"price_fen": 1_005},
            [("trading.quota.tick_fen", "trading.toml: quota.tick_fen")],
            id="off tick",
        ),
        pytest.param(
            {"price_fen": 1_205, "reference_price_fen": None},
            [("trading.quota.tick_fen", "trading.toml: quota.tick_fen")],
            id="no reference price: no band, still a tick",
        ),
        pytest.param({"quantity": 7}, [("trading.quota.lot", "trading.toml: quota.lot")], id="odd lot"),
        pytest.param(
            {"quantity": 505},
            [("trading.quota.order_quantity_max", "trading.toml: quota.order_quantity_max")],
            id="too many",
        ),
        pytest.param(
            {"expires_at": WEDNESDAY_10 + timedelta(days=7, seconds=1)},
            [("trading.quota.order_lifetime_days_max", "trading.toml: quota.order_lifetime_days_max")],
            id="rests too long",
        ),
        pytest.param(
            {"orders_last_minute": 10},
            [("trading.orders.rate_per_minute_max", "trading.toml: orders.rate_per_minute_max")],
            id="too many orders a minute",
        ),
        pytest.param(
            {"plan_kind": "fixed", "order_type": None, "price_fen": None, "quantity": 4, "expires_at": None},
            [("trading.orders.quantity_max", "trading.toml: orders.quantity_max")],
            id="fixed buy of too many licences",
        ),
        pytest.param(
            {"plan_kind": "subscription", "order_type": None, "price_fen": None, "quantity": 4},
            [("trading.orders.quantity_max", "trading.toml: orders.quantity_max")],
            id="subscription buy of too many",
        ),
        pytest.param(
            {"plan_kind": "auction", "order_type": None, "quantity": 3},
            [("trading.auction.bid_quantity_max", "trading.toml: auction.bid_quantity_max")],
            id="bid for too many licences",
        ),
        pytest.param(
            {"price_fen": 1_115, "quantity": 506, "orders_last_minute": 11},
            [
                ("trading.orders.rate_per_minute_max", "trading.toml: orders.rate_per_minute_max"),
                ("trading.quota.price_band", "trading.toml: quota.price_band_bps"),
                ("trading.quota.tick_fen", "trading.toml: quota.tick_fen"),
                ("trading.quota.lot", "trading.toml: quota.lot"),
                ("trading.quota.order_quantity_max", "trading.toml: quota.order_quantity_max"),
            ],
            id="every broken rule at once, in a stable order",
        ),
    ],
)
def test_each_order_rule_refuses_what_it_should(overrides: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert refused(RULES, order(**overrides)) == expected


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"price_fen": 900}, id="band's low end"),
        pytest.param({"price_fen": 1_100}, id="band's high end"),
        pytest.param({"order_type": "market", "price_fen": None}, id="market order: no price to judge"),
        pytest.param({"quantity": 500}, id="most allowed"),
        pytest.param({"expires_at": WEDNESDAY_10 + timedelta(days=7)}, id="longest lifetime"),
        pytest.param({"expires_at": None}, id="no lifetime asked"),
        pytest.param({"orders_last_minute": 9}, id="last order this minute"),
        pytest.param({"plan_kind": "fixed", "price_fen": None, "quantity": 3}, id="fixed buy of most allowed"),
        pytest.param({"plan_kind": "metered", "quantity": 7}, id="lots are for quota books"),
        pytest.param({"plan_kind": "auction", "quantity": 2}, id="bid for most allowed"),
        pytest.param({"plan_kind": "metered", "quantity": 1_000}, id="no quantity limit on metered"),
    ],
)
def test_orders_at_the_limits_pass(overrides: dict[str, Any]) -> None:
    assert check_order(RULES, order(**overrides)) == []


def test_a_message_says_what_to_fix() -> None:
    [violation] = check_order(RULES, order(price_fen=1_110))
    assert violation.message == (
        "The price 1110 fen is outside the price band, 900 to 1100 fen (±10% of the reference price 1000 fen)."
    )


def test_an_auction_may_accept_bids_for_at_most_its_duration() -> None:
    assert check_auction(RULES, WEDNESDAY_10, WEDNESDAY_10 + timedelta(hours=48)) == []
    assert [(v.rule, v.source) for v in check_auction(RULES, WEDNESDAY_10, WEDNESDAY_10 + timedelta(hours=49))] == [
        ("trading.auction.duration_hours_max", "trading.toml: auction.duration_hours_max")
    ]


# Who may buy what


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"category": "medical", "grade": "L3"},
            [
                "catalogue.categories.medical.buyer_qualifications",
                "trading.access.medical-sensitive.qualifications_any",
            ],
            id="sensitive medical data, unqualified buyer",
        ),
        pytest.param(
            {"category": "medical", "grade": "L3", "buyer_qualifications": frozenset({"medical-licensed"})},
            [],
            id="sensitive medical data, licensed researcher",
        ),
        pytest.param(
            {
                "category": "medical",
                "grade": "L3",
                "buyer_qualifications": frozenset({"medical-licensed"}),
                "purpose": "public-health",
            },
            ["trading.access.medical-sensitive.purposes_any"],
            id="the catalogue allows the purpose, the access entry does not",
        ),
        pytest.param(
            {
                "category": "medical",
                "grade": "L2",
                "buyer_qualifications": frozenset({"medical-licensed"}),
                "purpose": "public-health",
            },
            [],
            id="the access entry is for L3 only",
        ),
        pytest.param(
            {
                "category": "medical",
                "grade": "L2",
                "buyer_qualifications": frozenset({"medical-licensed"}),
                "purpose": "marketing",
            },
            ["catalogue.categories.medical.buyer_purposes"],
            id="a purpose the catalogue does not allow",
        ),
        pytest.param(
            {
                "category": "medical",
                "grade": "L3",
                "buyer_qualifications": frozenset({"medical-licensed"}),
                "purpose": None,
            },
            ["catalogue.categories.medical.buyer_purposes", "trading.access.medical-sensitive.purposes_any"],
            id="no purpose declared",
        ),
        pytest.param(
            {"category": "public", "grade": "L1"},
            ["catalogue.categories.public.buyer_qualifications", "trading.access.public-data.qualifications_any"],
            id="public data, not an operator",
        ),
        pytest.param(
            {"category": "public", "buyer_qualifications": frozenset({"public-data-operator", "x"})},
            [],
            id="public data, an operator",
        ),
        pytest.param(
            {"category": "medical", "grade": "L3", "side": "sell"},
            [],
            id="a vendor selling on a quota book is not asked who buys",
        ),
        pytest.param({"category": "pets"}, [], id="unknown category: refused at listing, not here"),
    ],
)
def test_buyer_access_names_the_catalogue_or_trading_rule_that_refuses(
    overrides: dict[str, Any], expected: list[str]
) -> None:
    assert [v.rule for v in check_order(RULES, order(**overrides))] == expected


def test_access_refusals_point_at_their_lines() -> None:
    facts = order(category="medical", grade="L3", purpose="marketing")
    assert [v.source for v in check_order(RULES, facts)] == [
        "catalogue.toml: categories[1].buyer_qualifications",
        "catalogue.toml: categories[1].buyer_purposes",
        "trading.toml: access[0].qualifications_any",
        "trading.toml: access[0].purposes_any",
    ]


def test_access_entries_without_categories_or_grades_apply_to_every_buy() -> None:
    everyone = TRADING.replace('categories = ["public"]\n', "")
    rules = decode_rulebook({**FILES, "trading.toml": everyone})
    assert [v.rule for v in check_order(rules, order())] == ["trading.access.public-data.qualifications_any"]
    assert [v.rule for v in check_order(rules, order(side="sell"))] == []


# Price bands


@pytest.mark.parametrize(
    ("reference", "band"),
    [
        (1_000, (900, 1_100)),
        (1_005, (910, 1_100)),  # 904.5 and 1105.5 rounded inwards to the tick of 10
        (10, (10, 10)),  # 9 to 11: only 10 is a tick
        (5, (10, 10)),  # 4.5 to 5.5 holds no tick: the nearest, at least one tick
        (14, (10, 10)),  # 12.6 to 15.4 holds no tick: the nearest is 10
        (16, (20, 20)),  # 14.4 to 17.6 holds no tick: the nearest is 20
    ],
)
def test_the_price_band_is_inclusive_and_on_the_tick(reference: int, band: tuple[int, int]) -> None:
    assert price_band(RULES, reference) == band


def test_a_price_band_needs_a_positive_reference() -> None:
    for bad in (0, -5):
        with pytest.raises(ValueError, match="reference_price_fen"):
            price_band(RULES, bad)


def _quota(bps: int, tick: int) -> Rulebook:
    quota = msgspec.structs.replace(RULES.trading.quota, price_band_bps=bps, tick_fen=tick)
    return msgspec.structs.replace(RULES, trading=msgspec.structs.replace(RULES.trading, quota=quota))


@given(st.integers(1, 10**12), st.integers(0, 10_000), st.integers(1, 10**6))
def test_a_price_band_is_the_ticks_inside_the_exact_band_or_else_the_nearest_tick(
    reference: int, bps: int, tick: int
) -> None:
    low, high = price_band(_quota(bps, tick), reference)
    assert tick <= low <= high and low % tick == 0 and high % tick == 0
    exact_low = Fraction(reference * (10_000 - bps), 10_000)
    exact_high = Fraction(reference * (10_000 + bps), 10_000)
    first = max(math.ceil(exact_low / tick), 1) * tick
    last = math.floor(exact_high / tick) * tick
    if first <= last:
        assert (low, high) == (first, last)
    else:
        nearest = max(1, math.floor(Fraction(reference, tick) + Fraction(1, 2))) * tick
        assert low == high == nearest


# Fees


@pytest.mark.parametrize(
    ("notional", "buyer_volume", "vendor_volume", "fees"),
    [
        pytest.param(100_000, 0, 0, (100, 1_000), id="base rates: 10 and 100 bps"),
        pytest.param(100_000, 0, 999_999, (100, 1_000), id="just below the first tier"),
        pytest.param(100_000, 0, 1_000_000, (100, 800), id="vendor's first tier, from its volume"),
        pytest.param(100_000, 1_000_000, 0, (100, 1_000), id="buyer's first tier keeps its base rate"),
        pytest.param(100_000, 5_000_000, 5_000_000, (0, 500), id="second tier, each side by its own volume"),
        pytest.param(100_000, 10**12, 0, (0, 1_000), id="highest tier reached"),
        pytest.param(1_000, 0, 0, (50, 50), id="minimum per side"),
        pytest.param(1_000, 5_000_000, 0, (0, 50), id="no minimum when the rate is 0"),
        pytest.param(30, 0, 0, (30, 30), id="never more than the notional"),
        pytest.param(0, 0, 0, (0, 0), id="nothing traded"),
    ],
)
def test_fees_by_rate_tier_and_minimum(notional: int, buyer_volume: int, vendor_volume: int, fees: tuple[int, int]) -> None:
    assert fee_for(RULES, "fixed", notional, buyer_volume, vendor_volume) == fees


def test_fees_round_half_up_to_a_whole_fen() -> None:
    rules = with_fees(FeeSchedule(plan_kind="fixed", buyer_bps=1, vendor_bps=3))
    assert fee_for(rules, "fixed", 5_000, 0, 0) == (1, 2)  # 0.5 fen up; 1.5 fen up
    assert fee_for(rules, "fixed", 4_999, 0, 0) == (0, 1)  # 0.4999 down; 1.4997 down
    assert fee_for(rules, "fixed", 15_000, 0, 0) == (2, 5)  # 1.5 up; 4.5 up


def test_free_plans_and_plan_kinds_without_a_schedule_pay_nothing() -> None:
    assert fee_for(RULES, "free", 10**9, 0, 0) == (0, 0)
    assert fee_for(RULES, "auction", 10**9, 0, 0) == (0, 0)


@pytest.mark.parametrize(
    "arguments",
    [(-1, 0, 0), (1, -1, 0), (1, 0, -1), (1.5, 0, 0), (True, 0, 0)],
)
def test_fees_take_non_negative_integers_of_fen(arguments: tuple[Any, Any, Any]) -> None:
    with pytest.raises(ValueError, match="integer of fen"):
        fee_for(RULES, "fixed", *arguments)


@st.composite
def fee_schedules(draw: st.DrawFn) -> FeeSchedule:
    bps = st.integers(0, 10_000)
    volumes = draw(st.lists(st.integers(1, 10**12), max_size=4, unique=True).map(sorted))
    tiers = [
        FeeTier(volume_from_fen=volume, buyer_bps=draw(st.none() | bps), vendor_bps=draw(st.none() | bps))
        for volume in volumes
    ]
    schedule = {
        "plan_kind": "fixed",
        "buyer_bps": draw(bps),
        "vendor_bps": draw(bps),
        "minimum_fen": draw(st.integers(0, 10**7)),
        "tiers": [msgspec.structs.asdict(tier) for tier in tiers],
    }
    return msgspec.convert(schedule, FeeSchedule)  # the model's own bounds hold


def expected_rates(schedule: FeeSchedule, volume: int) -> tuple[int, int]:
    reached = [tier for tier in schedule.tiers if tier.volume_from_fen <= volume]
    if not reached:
        return schedule.buyer_bps, schedule.vendor_bps
    tier = reached[-1]
    return (
        schedule.buyer_bps if tier.buyer_bps is None else tier.buyer_bps,
        schedule.vendor_bps if tier.vendor_bps is None else tier.vendor_bps,
    )


AMOUNTS = st.integers(0, 10**13)


@settings(max_examples=300)
@given(fee_schedules(), AMOUNTS, st.integers(0, 10**12), AMOUNTS, AMOUNTS)
def test_fees_are_never_negative_never_above_the_notional_monotone_and_at_least_the_minimum(
    schedule: FeeSchedule, notional: int, more: int, buyer_volume: int, vendor_volume: int
) -> None:
    rules = with_fees(schedule)
    fees = fee_for(rules, "fixed", notional, buyer_volume, vendor_volume)
    larger = fee_for(rules, "fixed", notional + more, buyer_volume, vendor_volume)
    rates = (expected_rates(schedule, buyer_volume)[0], expected_rates(schedule, vendor_volume)[1])
    for fee, fee_of_larger, bps in zip(fees, larger, rates, strict=True):
        assert isinstance(fee, int) and 0 <= fee <= notional
        assert fee <= fee_of_larger  # monotone in the notional
        if bps == 0:
            assert fee == 0
        else:
            assert fee >= min(schedule.minimum_fen, notional)  # the minimum applies
            exact = notional * bps  # the fee × 10000
            # Rounded half up: within half a fen of the exact fee, unless the minimum or the
            # notional decided.
            if schedule.minimum_fen < fee < notional:
                assert -5_000 < fee * 10_000 - exact <= 5_000


# Auctions, self-trades and settlement


def test_the_auction_price_rule_self_trade_policy_and_settlement_windows_are_read_from_the_rules() -> None:
    assert auction_price_rule(RULES) == "n_plus_one"
    assert type(auction_price_rule(RULES)) is str
    assert self_trade_policy(RULES) == "cancel_maker"
    assert settlement_windows(RULES) == (timedelta(hours=48), False, timedelta(hours=96))


# The loader: any value of the new files, however mangled, gives a Rulebook or a refusal
# naming that file and the table the mangled value is in; never another exception.

SHIPPED = {name: (shipped_rules_dir() / name).read_text(encoding="utf-8") for name in FILES}
NEW_FILES = ("trading.toml", "fees.toml", "settlement.toml")

TIMES = ["00:00", "09:30", "15:00", "23:59", "24:00", "24:01", "9:30", "12:60", "noon"]
ZONES = ["Asia/Shanghai", "UTC", "Europe/London", "Mars/Olympus", "asia/shanghai", "../etc", "Asia", ""]
CODES = ["mon", "sun", "Mon", "holiday", "nth", "n_plus_one", "vickrey", "allow", "cancel_taker"]
CODES += ["fixed", "free", "quota", "barter", "medical", "public", "pets", "L3", "L9", "research"]
DATES = ["2026-10-01", "2026-02-30", "20261001", "2026-10-1"]
NEAR_STRINGS = st.sampled_from(TIMES + ZONES + CODES + DATES) | st.text(max_size=12)
NEAR_INTEGERS = st.sampled_from([-1, 0, 1, 10_000, 10_001, 10_000_000, 2**63, -(2**63) - 1]) | st.integers(-10, 10**8)
SCALARS = (
    st.booleans()
    | st.integers()
    | st.floats()
    | NEAR_STRINGS
    | st.dates()
    | st.datetimes()
    | st.times()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded TOML document a value can be changed."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            paths += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            paths += _paths(inner, (*prefix, index))
    return paths


def _near(draw: st.DrawFn, value: Any) -> Any:
    """A value of the same kind as `value`, likely to break a rule a type cannot express."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return draw(NEAR_INTEGERS)
    if isinstance(value, str):
        return draw(NEAR_STRINGS)
    if isinstance(value, list) and value:
        match draw(st.sampled_from(["repeat", "reverse", "drop"])):
            case "repeat":
                return [*value, value[draw(st.integers(0, len(value) - 1))]]
            case "reverse":
                return value[::-1]
            case _:
                return value[1:]
    return draw(VALUES)


@st.composite
def mangled_value(draw: st.DrawFn) -> tuple[str, str, str]:
    """(file, its mangled text, the top-level key the mangling is under)."""
    name = draw(st.sampled_from(NEW_FILES))
    document = msgspec.toml.decode(SHIPPED[name])
    path = draw(st.sampled_from(_paths(document)))
    *parents, last = path
    container: Any = document
    for step in parents:
        container = container[step]
    target = container[last]
    match draw(st.sampled_from(["near", "near", "near", "replace", "delete", "add"])):
        case "near":
            container[last] = _near(draw, target)
        case "replace":
            container[last] = draw(VALUES)
        case "delete":
            del container[last]
        case _ if isinstance(target, dict):
            target[draw(st.text(min_size=1, max_size=8) | st.sampled_from(["tiers", "access", "days", "id"]))] = draw(VALUES)
        case _ if isinstance(target, list):
            target.append(draw(VALUES))
        case _:
            container[last] = [target, draw(VALUES)]
    return name, tomli_w.dumps(document), path[0]


def _top_level(key: str) -> str:
    match = re.match(r"[^.\[]*", key)
    assert match is not None
    return match.group()


@settings(max_examples=400, deadline=None)
@given(mangled_value())
def test_a_mangled_value_gives_a_rulebook_or_a_refusal_naming_its_file_and_table(mangled: tuple[str, str, str]) -> None:
    name, text, table = mangled
    files = {**SHIPPED, name: text}
    try:
        rulebook = decode_rulebook(files)
    except RulebookInvalid as refusal:
        errors = refusal.extensions["errors"]
        assert errors
        for error in errors:
            assert set(error) == {"file", "key", "reason"}
            assert error["file"] == name, error
            assert isinstance(error["reason"], str) and error["reason"]
            # The whole file only for text the loader will not read (more dots than it allows).
            assert _top_level(error["key"]) == table or (error["key"] == "" and "dots" in error["reason"]), error
    else:
        assert isinstance(rulebook, Rulebook)
        rulebook_hash(files)
        in_session(rulebook, WEDNESDAY_10)  # a set that decodes can be used
        fee_for(rulebook, "fixed", 10**6, 0, 10**8)
