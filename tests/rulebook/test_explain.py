"""Explaining decisions: every rule a listing, an order or a fee is judged by is listed with the
facts it looked at, its parameters, its outcome and its line; the failures are exactly what
check_listing and check_order refuse with, and the fees are fee_for's. The examples use the
shipped rules, the rules operators start from; the properties vary every rule."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.listings.schemas import PLAN_KINDS, ListingIn
from exchange.rulebook.evaluate import VendorFacts, Violation, check_listing
from exchange.rulebook.explain import (
    FAIL,
    NOT_APPLICABLE,
    OUTCOMES,
    PASS,
    RuleTrace,
    explain_fees,
    explain_listing,
    explain_order,
    violations_of,
)
from exchange.rulebook.load import decode_rulebook
from exchange.rulebook.model import (
    DAY_MINUTES,
    LISTING_FIELDS,
    RULE_FILES,
    WEEKDAYS,
    AccessRule,
    AuctionRules,
    FeeRules,
    FeeSchedule,
    FeeTier,
    OrderRules,
    QuotaRules,
    Rulebook,
    SessionRules,
    VendorRules,
)
from exchange.rulebook.trading import OrderFacts, check_order, fee_for, price_band
from exchange.settings import shipped_rules_dir

RULEBOOK = decode_rulebook({name: (shipped_rules_dir() / name).read_text(encoding="utf-8") for name in RULE_FILES})
VENDOR = VendorFacts(qualifications=frozenset())
WEDNESDAY = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def make_listing(**overrides: Any) -> ListingIn:
    """A transport L2 listing the shipped rules accept."""
    body: dict[str, Any] = {
        "title": "上海交通出行数据 Shanghai mobility OD matrix",
        "description": "全市地铁与公交刷卡出行起讫点矩阵，按小时汇总。Hourly origin-destination matrix of trips.",
        "category": "transport",
        "grade": "L2",
        "delivery": "api",
        "schema": {"origin": "station id", "destination": "station id", "trips": "integer"},
        "attestations": {"source": "Contract SH-TR-2026-001 with the metro operator.", "rights": ["holding", "use"]},
        "licence": {"purposes": ["research"], "duration_days": 365},
        "plans": [{"kind": "fixed", "price": {"amount": 1_200_000, "currency": "CNY"}}],
    }
    body.update(overrides)
    return msgspec.convert(body, ListingIn)


def order(**overrides: Any) -> OrderFacts:
    """A fixed-price transport buy the shipped rules accept."""
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
        at=WEDNESDAY,
        expires_at=None,
        orders_last_minute=0,
    )
    return dataclasses.replace(facts, **overrides)


def only(traces: list[RuleTrace], rule: str) -> RuleTrace:
    found = [trace for trace in traces if trace.rule == rule]
    assert len(found) == 1, (rule, found)
    return found[0]


def outcomes(traces: list[RuleTrace]) -> dict[str, str]:
    return {f"{trace.rule} @ {trace.source}": trace.outcome for trace in traces}


def assert_well_formed(traces: list[RuleTrace]) -> None:
    for trace in traces:
        assert trace.outcome in OUTCOMES, trace
        assert trace.message and trace.rule, trace
        assert re.fullmatch(r"[a-z]+\.toml: \S.*", trace.source), trace
        assert_json(trace.inputs)
        assert json.loads(json.dumps(trace.inputs)) == trace.inputs


def assert_json(value: Any) -> None:
    """Plain JSON values only: no sets, tuples, enums or datetimes slipping through."""
    if isinstance(value, dict):
        assert all(type(key) is str for key in value), value
        for inner in value.values():
            assert_json(inner)
    elif isinstance(value, list):
        for inner in value:
            assert_json(inner)
    else:
        assert value is None or type(value) in (bool, int, str), repr(value)


# Listings


def test_a_listing_refused_for_biometric_authorisation_shows_the_category_and_the_missing_field() -> None:
    face = make_listing(
        category="biometric",
        grade="L3",
        attestations={"source": "Signed consent", "consent": "C-1", "rights": ["holding"]},
    )
    traces = explain_listing(RULEBOOK, face, VENDOR)
    trace = only(traces, "catalogue.categories.biometric.requires_authorisation")
    assert trace == RuleTrace(
        "catalogue.categories.biometric.requires_authorisation",
        "catalogue.toml: categories[6].requires_authorisation",
        {"category": "biometric", "requires_authorisation": True, "field": "attestations.authorisation_id", "given": False},
        FAIL,
        "Biometric (生物特征) data needs an authorisation to be traded: give its id in `attestations.authorisation_id`.",
    )
    assert violations_of(traces) == check_listing(RULEBOOK, face, VENDOR)
    consent = only(traces, "catalogue.categories.biometric.personal")
    assert (consent.outcome, consent.inputs["given"]) == (PASS, True)


def test_a_listing_lists_every_rule_it_was_judged_by_in_the_checks_order() -> None:
    traces = explain_listing(RULEBOOK, make_listing(), VENDOR)
    assert outcomes(traces) == {
        "catalogue.categories @ catalogue.toml: categories": PASS,
        "catalogue.grades @ catalogue.toml: grades": PASS,
        "catalogue.grades.L2.listable @ catalogue.toml: grades[1].listable": PASS,
        "listing.required.attestations.source @ listing.toml: required[0]": PASS,
        "listing.required.attestations.rights @ listing.toml: required[1]": PASS,
        "listing.required.schema @ listing.toml: required[2]": PASS,
        "listing.title_length_max @ listing.toml: title_length_max": PASS,
        "listing.description_length_min @ listing.toml: description_length_min": PASS,
        "listing.description_length_max @ listing.toml: description_length_max": PASS,
        "listing.licence_duration_days_max @ listing.toml: licence_duration_days_max": PASS,
        "listing.plan_kinds.L2 @ listing.toml: plan_kinds.L2": PASS,
        "catalogue.categories.transport.requires_authorisation @ catalogue.toml: categories[0].requires_authorisation": NOT_APPLICABLE,
        "catalogue.categories.transport.personal @ catalogue.toml: categories[0].personal": NOT_APPLICABLE,
        "catalogue.personal_data_requires_consent @ catalogue.toml: personal_data_requires_consent": NOT_APPLICABLE,
        "listing.vendors.qualifications_any @ listing.toml: vendors.qualifications_any": NOT_APPLICABLE,
    }
    assert list(outcomes(traces)) == [f"{trace.rule} @ {trace.source}" for trace in traces]  # no rule twice
    assert only(traces, "listing.title_length_max").inputs == {"title_length": 36, "title_length_max": 120}
    assert only(traces, "listing.vendors.qualifications_any").message == "Any vendor may list: no qualification is asked."


def test_an_unknown_grade_leaves_the_rules_that_need_it_unasked_and_says_so() -> None:
    traces = explain_listing(RULEBOOK, make_listing(grade="L9"), VENDOR)
    assert only(traces, "catalogue.grades").outcome == FAIL
    for rule in ("catalogue.grades.L9.listable", "listing.plan_kinds.L9"):
        assert only(traces, rule).outcome == NOT_APPLICABLE
        assert "L9" in only(traces, rule).message


# Orders


def test_a_medical_l3_buy_without_the_qualification_names_the_access_entry_and_what_it_asks() -> None:
    facts = order(category="medical", grade="L3", buyer_qualifications=frozenset({"public-data-operator"}))
    traces = explain_order(RULEBOOK, facts)
    trace = only(traces, "trading.access.medical-sensitive.qualifications_any")
    assert (trace.outcome, trace.source) == (FAIL, "trading.toml: access[0].qualifications_any")
    assert trace.inputs["buyer_qualifications"] == ["public-data-operator"]
    assert trace.inputs["qualifications_any"] == ["medical-licensed"]
    assert trace.message == "To buy L3 medical data, a buyer must hold one of the qualifications medical-licensed."
    assert only(traces, "trading.access.medical-sensitive.purposes_any").outcome == PASS  # research is allowed
    public = only(traces, "trading.access.public-data.qualifications_any")
    assert public.outcome == NOT_APPLICABLE and "public data of every grade" in public.message
    assert violations_of(traces) == check_order(RULEBOOK, facts)
    assert [trace.rule for trace in traces if trace.outcome == FAIL] == [
        "catalogue.categories.medical.buyer_qualifications",
        "trading.access.medical-sensitive.qualifications_any",
    ]


def test_an_order_outside_the_band_shows_the_bounds_and_the_price() -> None:
    quota = order(plan_kind="quota", order_type="limit", price_fen=12_001, reference_price_fen=10_000)
    trace = only(explain_order(RULEBOOK, quota), "trading.quota.price_band")
    assert (trace.outcome, trace.source) == (FAIL, "trading.toml: quota.price_band_bps")
    assert trace.inputs | {"band_low_fen": 8_000, "band_high_fen": 12_000, "price_fen": 12_001} == trace.inputs
    assert (trace.inputs["reference_price_fen"], trace.inputs["price_band_bps"]) == (10_000, 2_000)
    assert trace.message == check_order(RULEBOOK, quota)[0].message
    inside = only(explain_order(RULEBOOK, dataclasses.replace(quota, price_fen=12_000)), "trading.quota.price_band")
    assert inside.outcome == PASS and "8000 to 12000 fen" in inside.message
    market = dataclasses.replace(quota, order_type="market", price_fen=None)
    assert only(explain_order(RULEBOOK, market), "trading.quota.price_band").outcome == NOT_APPLICABLE


def test_rules_that_do_not_apply_are_listed_with_the_reason() -> None:
    sell = order(category="medical", grade="L3", side="sell", plan_kind="quota", order_type="market", quantity=5)
    traces = explain_order(RULEBOOK, sell)
    buyer_rules = [trace for trace in traces if ".access." in trace.rule or ".buyer_" in trace.rule]
    assert len(buyer_rules) == 2 + 2 * len(RULEBOOK.trading.access)
    assert {trace.outcome for trace in buyer_rules} == {NOT_APPLICABLE}
    assert all("this is a sell" in trace.message for trace in buyer_rules)
    fixed = explain_order(RULEBOOK, order())
    quota_rules = [trace for trace in fixed if trace.rule.startswith("trading.quota.")]
    assert len(quota_rules) == 5 and {trace.outcome for trace in quota_rules} == {NOT_APPLICABLE}
    assert all("this order is on a fixed plan" in trace.message for trace in quota_rules)


def test_the_session_rules_show_the_local_time_they_read() -> None:
    closed = msgspec.structs.replace(RULEBOOK.trading.sessions, days=list(WEEKDAYS[:5]), open="09:30", close="15:00")
    rulebook = msgspec.structs.replace(RULEBOOK, trading=msgspec.structs.replace(RULEBOOK.trading, sessions=closed))
    traces = explain_order(rulebook, order(at=datetime(2026, 6, 3, 0, 0, tzinfo=UTC)))  # 08:00 in Shanghai
    sessions = [trace for trace in traces if trace.rule.startswith("trading.sessions")]
    assert [(trace.source, trace.outcome) for trace in sessions] == [
        ("trading.toml: sessions.holidays", PASS),
        ("trading.toml: sessions.days", PASS),
        ("trading.toml: sessions.open", FAIL),
        ("trading.toml: sessions.close", NOT_APPLICABLE),
    ]
    assert sessions[2].inputs == {
        "at": "2026-06-03T00:00:00+00:00",
        "timezone": "Asia/Shanghai",
        "local_time": "2026-06-03T08:00:00+08:00",
        "weekday": "wed",
        "open": "09:30",
    }


@pytest.mark.parametrize(
    "overrides",
    [{"side": "BUY"}, {"order_type": "stop"}, {"at": datetime(2026, 6, 3)}, {"expires_at": datetime(2026, 6, 4)}],
)
def test_facts_no_order_has_are_refused_as_check_order_refuses_them(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as checked:
        check_order(RULEBOOK, order(**overrides))
    with pytest.raises(ValueError, match=re.escape(str(checked.value))):
        explain_order(RULEBOOK, order(**overrides))


# Fees


def test_fees_name_the_schedule_and_tier_each_side_was_charged_by() -> None:
    buyer, vendor = explain_fees(RULEBOOK, "fixed", 1_000_000, 0, 10_000_000)
    assert (buyer.rule, buyer.source, buyer.inputs["bps"], buyer.inputs["fee_fen"]) == (
        "fees.fixed.buyer_bps",
        "fees.toml: fees[0].buyer_bps",
        0,
        0,
    )
    assert (vendor.rule, vendor.source, vendor.outcome) == ("fees.fixed.vendor_bps", "fees.toml: fees[0].tiers[0].vendor_bps", PASS)
    assert vendor.inputs == {
        "plan_kind": "fixed",
        "notional_fen": 1_000_000,
        "volume_fen": 10_000_000,
        "tier": 0,
        "tier_volume_from_fen": 10_000_000,
        "bps": 50,
        "minimum_fen": 100,
        "exact_fee_fen": "5000",
        "rounded_fee_fen": 5_000,
        "minimum_applied": False,
        "capped_at_notional": False,
        "fee_fen": 5_000,
    }
    assert (buyer.inputs["fee_fen"], vendor.inputs["fee_fen"]) == fee_for(RULEBOOK, "fixed", 1_000_000, 0, 10_000_000)


def test_fees_show_the_rounding_and_the_minimum() -> None:
    _, vendor = explain_fees(RULEBOOK, "fixed", 1_050, 0, 0)  # 1% of 10.5 fen
    assert vendor.inputs["exact_fee_fen"] == "10.5" and vendor.inputs["rounded_fee_fen"] == 11
    assert vendor.inputs["minimum_applied"] and vendor.inputs["fee_fen"] == 100
    assert vendor.message == (
        "The vendor pays the fixed schedule's vendor rate, 100 bps (no volume tier reached with 0 fen this month): "
        "1050 fen × 100 bps = 10.5 fen, rounded half up to 11 fen, raised to the minimum 100 fen; the fee is 100 fen."
    )


def test_a_plan_kind_without_a_schedule_pays_nothing_and_says_why() -> None:
    rulebook = msgspec.structs.replace(RULEBOOK, fees=FeeRules(fees=[]))
    traces = explain_fees(rulebook, "fixed", 10**6, 0, 0)
    assert [(trace.outcome, trace.source, trace.inputs["fee_fen"]) for trace in traces] == [
        (NOT_APPLICABLE, "fees.toml: fees", 0),
        (NOT_APPLICABLE, "fees.toml: fees", 0),
    ]


@pytest.mark.parametrize("arguments", [(-1, 0, 0), (1, -1, 0), (1, 0, -1), (True, 0, 0)])
def test_fees_take_what_fee_for_takes(arguments: tuple[Any, Any, Any]) -> None:
    with pytest.raises(ValueError, match="integer of fen"):
        fee_for(RULEBOOK, "fixed", *arguments)
    with pytest.raises(ValueError, match="integer of fen"):
        explain_fees(RULEBOOK, "fixed", *arguments)


# The invariants: explaining never changes a decision.

QUALIFICATIONS = ("medical-licensed", "public-data-operator", "data-merchant")
PURPOSES = ("research", "public-health", "clinical-care", "marketing")
CATEGORY_CODES = tuple(category.code for category in RULEBOOK.catalogue.categories)
GRADE_CODES = tuple(grade.code for grade in RULEBOOK.catalogue.grades)
CATEGORIES = st.sampled_from([*CATEGORY_CODES, "pets"])
GRADES = st.sampled_from([*GRADE_CODES, "L9"])
BLANKISH = st.sampled_from([None, "", " \n", "X-1"])
PLAN_BODIES: dict[str, dict[str, Any]] = {
    "fixed": {"price": {"amount": 100}},
    "free": {},
    "subscription": {"price": {"amount": 100}, "period_days": 30},
    "metered": {"tiers": [{"up_to": None, "price": {"amount": 1}}]},
    "auction": {"reserve_price": {"amount": 100}, "licences": 3},
    "quota": {"unit": "1 GB", "reference_price": {"amount": 100}},
    "negotiated": {},
    "revenue_share": {"share_bps": 100, "minimum": {"amount": 100}},
}
assert set(PLAN_BODIES) == set(PLAN_KINDS)


def some(values: Any, min_size: int = 0) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(list(values)), min_size=min_size, max_size=len(values), unique=True)


@st.composite
def listing_rulebooks(draw: st.DrawFn) -> Rulebook:
    """The shipped rules with every listing rule varied, bounds included; a rule set the loader
    would refuse (a listable grade without plan kinds) is judged the same way by both."""
    catalogue = msgspec.structs.replace(
        RULEBOOK.catalogue,
        personal_data_requires_consent=draw(st.booleans()),
        categories=[
            msgspec.structs.replace(entry, requires_authorisation=draw(st.booleans()), personal=draw(st.booleans()))
            for entry in RULEBOOK.catalogue.categories
        ],
        grades=[msgspec.structs.replace(entry, listable=draw(st.booleans())) for entry in RULEBOOK.catalogue.grades],
    )
    listing = msgspec.structs.replace(
        RULEBOOK.listing,
        required=draw(st.lists(st.sampled_from(sorted(LISTING_FIELDS)), max_size=4, unique=True)),
        title_length_max=draw(st.integers(1, 40)),
        description_length_min=draw(st.integers(1, 30)),
        description_length_max=draw(st.integers(1, 60)),
        licence_duration_days_max=draw(st.integers(1, 60)),
        plan_kinds={grade: draw(some(PLAN_KINDS, min_size=1)) for grade in draw(some(GRADE_CODES))},
        vendors=VendorRules(qualifications_any=draw(some(QUALIFICATIONS)), allow_sponsored=draw(st.booleans())),
    )
    return msgspec.structs.replace(RULEBOOK, catalogue=catalogue, listing=listing)


@st.composite
def listings(draw: st.DrawFn) -> ListingIn:
    body = {
        "title": "长" * draw(st.integers(1, 45)),
        "description": "x" * draw(st.integers(1, 65)),
        "category": draw(CATEGORIES),
        "grade": draw(GRADES),
        "delivery": "api",
        "schema": draw(st.sampled_from([None, {}, [], "", " ", "route, hour, riders", {"route": "string"}])),
        "personal_data": draw(st.booleans()),
        "attestations": {
            "source": draw(BLANKISH),
            "consent": draw(BLANKISH),
            "authorisation_id": draw(BLANKISH),
            "rights": draw(some(["holding", "use", "operation"])),
        },
        "licence": {"purposes": ["research"], "duration_days": draw(st.integers(1, 65))},
        "plans": [{"kind": kind, **PLAN_BODIES[kind]} for kind in draw(st.lists(st.sampled_from(PLAN_KINDS), min_size=1, max_size=3))],
    }
    return msgspec.convert(body, ListingIn)


QUALIFIED = some(QUALIFICATIONS).map(frozenset)
VENDORS = st.builds(VendorFacts, qualifications=QUALIFIED, sponsor_qualifications=st.none() | QUALIFIED)


@settings(max_examples=400, deadline=None)
@given(listing_rulebooks(), listings(), VENDORS)
def test_the_failures_explain_listing_lists_are_exactly_check_listings_violations(
    rulebook: Rulebook, listing: ListingIn, vendor: VendorFacts
) -> None:
    traces = explain_listing(rulebook, listing, vendor)
    assert violations_of(traces) == check_listing(rulebook, listing, vendor)
    assert_well_formed(traces)
    # Every rule is listed whatever the case: 3 classification, the required fields, 4 limits,
    # plan kinds, 3 attestations and the vendor rule.
    assert len(traces) == 3 + len(rulebook.listing.required) + 4 + 1 + 3 + 1


FIRST_DAY = datetime(2026, 6, 1)
DAYS = 14
DATES = [(FIRST_DAY + timedelta(days=day)).date().isoformat() for day in range(DAYS)]


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def order_rulebooks(draw: st.DrawFn) -> Rulebook:
    """The shipped rules with every trading rule and the catalogue's buyer lists varied."""
    opening, closing = sorted(draw(st.lists(st.integers(0, 24 * 60), min_size=2, max_size=2, unique=True)))
    sessions = SessionRules(
        timezone=draw(st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York"])),
        days=draw(some(WEEKDAYS, min_size=1)),
        open=clock(opening),
        close=clock(closing),
        holidays=draw(some([*DATES, "2026-02-30"])),
    )
    quota = QuotaRules(
        price_band_bps=draw(st.integers(0, 3_000)),
        tick_fen=draw(st.integers(1, 50)),
        lot=draw(st.integers(1, 5)),
        order_quantity_max=draw(st.integers(1, 60)),
        order_lifetime_days_max=draw(st.integers(1, 10)),
    )
    access = [
        AccessRule(
            id=f"entry-{index}",
            categories=draw(some(CATEGORY_CODES)),
            grades=draw(some(GRADE_CODES)),
            qualifications_any=draw(some(QUALIFICATIONS)),
            purposes_any=draw(some(PURPOSES)),
        )
        for index in range(draw(st.integers(0, 3)))
    ]
    trading = msgspec.structs.replace(
        RULEBOOK.trading,
        sessions=sessions,
        quota=quota,
        orders=OrderRules(rate_per_minute_max=draw(st.integers(1, 10)), quantity_max=draw(st.integers(1, 10))),
        auction=AuctionRules(bid_quantity_max=draw(st.integers(1, 3))),
        access=access,
    )
    categories = [
        msgspec.structs.replace(entry, buyer_qualifications=draw(some(QUALIFICATIONS)), buyer_purposes=draw(some(PURPOSES)))
        for entry in RULEBOOK.catalogue.categories
    ]
    catalogue = msgspec.structs.replace(RULEBOOK.catalogue, categories=categories)
    return msgspec.structs.replace(RULEBOOK, catalogue=catalogue, trading=trading)


def near(draw: st.DrawFn, anything: st.SearchStrategy[int], *limits: int) -> int:
    """A value from `anything`, or one on or next to a limit: where a `>` written `>=` shows."""
    if not limits or draw(st.booleans()):
        return draw(anything)
    return max(1, draw(st.sampled_from(limits)) + draw(st.sampled_from([-1, 0, 1])))


@st.composite
def order_cases(draw: st.DrawFn) -> tuple[Rulebook, OrderFacts]:
    """A rulebook and an order, the order often on the edge of one of its rules."""
    rulebook = draw(order_rulebooks())
    trading = rulebook.trading
    sessions, quota = trading.sessions, trading.quota
    if draw(st.booleans()):
        at = draw(st.datetimes(FIRST_DAY, FIRST_DAY + timedelta(days=DAYS), timezones=st.just(UTC)))
    else:  # the opening or closing minute, or the one before, in the session's zone
        day = datetime.combine(FIRST_DAY.date() + timedelta(days=draw(st.integers(0, DAYS - 1))), time(), ZoneInfo(sessions.timezone))
        edge = draw(st.sampled_from([sessions.open_minute(), sessions.close_minute()])) - draw(st.sampled_from([0, 1]))
        at = (day + timedelta(minutes=min(max(edge, 0), DAY_MINUTES - 1))).astimezone(UTC)
    reference = draw(st.none() | st.just(0) | st.integers(1, 3_000))
    band = price_band(rulebook, reference) if reference else ()
    lifetime = timedelta(days=quota.order_lifetime_days_max)
    expires_at = draw(
        st.none()
        | st.timedeltas(timedelta(0), timedelta(days=12)).map(lambda span: at + span)
        | st.sampled_from([-1, 0, 1]).map(lambda microseconds: at + lifetime + timedelta(microseconds=microseconds))
    )
    quantity_limits = (quota.lot, quota.order_quantity_max, trading.orders.quantity_max, trading.auction.bid_quantity_max)
    facts = OrderFacts(
        category=draw(CATEGORIES),
        grade=draw(GRADES),
        plan_kind=draw(st.sampled_from([*PLAN_KINDS, "quota", "quota", "barter"])),
        side=draw(st.sampled_from(["buy", "sell"])),
        order_type=draw(st.sampled_from(["limit", "market", None])),
        price_fen=None if draw(st.booleans()) else near(draw, st.integers(1, 3_000), *band),
        quantity=near(draw, st.integers(1, 70), *quantity_limits),
        reference_price_fen=reference,
        buyer_qualifications=draw(QUALIFIED),
        purpose=draw(st.none() | st.sampled_from(PURPOSES)),
        at=at,
        expires_at=expires_at,
        orders_last_minute=near(draw, st.integers(1, 13), trading.orders.rate_per_minute_max) - 1,
    )
    return rulebook, facts


@settings(max_examples=500, deadline=None)
@given(order_cases())
def test_the_failures_explain_order_lists_are_exactly_check_orders_violations(case: tuple[Rulebook, OrderFacts]) -> None:
    rulebook, facts = case
    traces = explain_order(rulebook, facts)
    assert violations_of(traces) == check_order(rulebook, facts)
    assert_well_formed(traces)
    # Every rule is listed whatever the order: 4 session, 2 order, 5 quota, 1 auction, 2
    # catalogue and 2 per access entry.
    assert len(traces) == 4 + 2 + 5 + 1 + 2 + 2 * len(rulebook.trading.access)


@st.composite
def fee_schedules(draw: st.DrawFn) -> FeeSchedule:
    bps = st.integers(0, 10_000)
    volumes = draw(st.lists(st.integers(1, 10**12), max_size=4, unique=True).map(sorted))
    return FeeSchedule(
        plan_kind=draw(st.sampled_from(["fixed", "quota", "free"])),  # a kind twice: the first is used
        buyer_bps=draw(bps),
        vendor_bps=draw(bps),
        minimum_fen=draw(st.integers(0, 10**7)),
        tiers=[FeeTier(volume_from_fen=volume, buyer_bps=draw(st.none() | bps), vendor_bps=draw(st.none() | bps)) for volume in volumes],
    )


AMOUNTS = st.integers(0, 10**13)


def rate_at(rulebook: Rulebook, source: str) -> Any:
    """The value at a fee trace's source, e.g. `fees.toml: fees[0].tiers[1].vendor_bps`."""
    value: Any = rulebook.fees
    for name, index in re.findall(r"(\w+)(?:\[(\d+)\])?", source.removeprefix("fees.toml: ")):
        value = getattr(value, name)
        value = value[int(index)] if index else value
    return value


@st.composite
def fee_cases(draw: st.DrawFn) -> tuple[Rulebook, str, int, int, int]:
    """A fee rulebook, a plan kind, a notional and the two volumes, often on a tier's edge."""
    schedules = draw(st.lists(fee_schedules(), max_size=3))
    edges = [tier.volume_from_fen for schedule in schedules for tier in schedule.tiers]
    volumes = AMOUNTS | st.sampled_from(edges or [0]).flatmap(lambda edge: st.sampled_from([max(edge - 1, 0), edge]))
    rulebook = msgspec.structs.replace(RULEBOOK, fees=FeeRules(fees=schedules))
    return rulebook, draw(st.sampled_from(["fixed", "quota", "free"])), draw(AMOUNTS), draw(volumes), draw(volumes)


@settings(max_examples=300, deadline=None)
@given(fee_cases())
def test_explain_fees_arrives_at_fee_fors_fees_from_the_rates_it_names(case: tuple[Rulebook, str, int, int, int]) -> None:
    rulebook, plan_kind, notional, buyer_volume, vendor_volume = case
    traces = explain_fees(rulebook, plan_kind, notional, buyer_volume, vendor_volume)
    assert tuple(trace.inputs["fee_fen"] for trace in traces) == fee_for(rulebook, plan_kind, notional, buyer_volume, vendor_volume)
    assert_well_formed(traces)
    assert [trace.rule for trace in traces] == [f"fees.{plan_kind}.buyer_bps", f"fees.{plan_kind}.vendor_bps"]
    if rulebook.fees.schedule(plan_kind) is None:
        assert {trace.outcome for trace in traces} == {NOT_APPLICABLE}
    else:
        assert {trace.outcome for trace in traces} == {PASS}  # fees never refuse
        for trace in traces:
            assert rate_at(rulebook, trace.source) == trace.inputs["bps"]  # the line named gives the rate


def test_violations_of_keeps_the_failures_in_order() -> None:
    traces = [
        RuleTrace("a", "x.toml: a", {}, FAIL, "A."),
        RuleTrace("b", "x.toml: b", {}, PASS, "B."),
        RuleTrace("c", "x.toml: c", {}, FAIL, "C."),
    ]
    assert violations_of(traces) == [Violation("a", "A.", "x.toml: a"), Violation("c", "C.", "x.toml: c")]
