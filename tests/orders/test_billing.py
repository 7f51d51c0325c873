"""Billing core: worked examples for metered and revenue-share bills, billing cycles and the usage
ledger, then properties checked against naive references (a per-call price walk, a flat list
of records, month-by-month calendar arithmetic)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.listings.schemas import MeteredPlan
from exchange.orders.billing import (
    MeteredBill,
    TierLine,
    UsageLedger,
    UsageRecord,
    billing_cycles,
    credit_exposure,
    metered_bill,
    revenue_share_bill,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROPERTIES = settings(max_examples=150, deadline=None, database=None)


def cny(fen: int) -> dict[str, object]:
    return {"amount": fen, "currency": "CNY"}


def metered(tiers: list[tuple[int | None, int]], *, fee: int | None = None, free: int = 0, cap: int | None = None) -> dict:
    """A metered plan as the catalogue stores it."""
    plan: dict[str, object] = {
        "kind": "metered",
        "id": "plan-1",
        "tiers": [{"up_to": up_to, "price": cny(price)} for up_to, price in tiers],
        "free_calls": free,
    }
    if fee is not None:
        plan["monthly_fee"] = cny(fee)
    if cap is not None:
        plan["monthly_cap"] = cny(cap)
    return plan


# 10 fen a call for the first 1,000, 8 fen up to 5,000, 5 fen beyond.
THREE_TIERS = [(1000, 10), (5000, 8), (None, 5)]


# ── metered: examples ────────────────────────────────────────────────────────────────────────────


def test_calls_exactly_at_a_tier_boundary_stay_in_that_tier() -> None:
    bill = metered_bill(metered(THREE_TIERS), 1000)
    assert bill.tier_lines == [TierLine(1000, 1000, 10, 10_000), TierLine(5000, 0, 8, 0), TierLine(None, 0, 5, 0)]
    assert bill.total_fen == 10_000
    assert metered_bill(metered(THREE_TIERS), 1001).total_fen == 10_008
    assert metered_bill(metered(THREE_TIERS), 5000).total_fen == 10_000 + 4000 * 8


def test_calls_in_the_last_unbounded_tier_are_graduated_like_brackets() -> None:
    bill = metered_bill(metered(THREE_TIERS), 7500)
    assert [(line.calls, line.amount_fen) for line in bill.tier_lines] == [(1000, 10_000), (4000, 32_000), (2500, 12_500)]
    assert bill == MeteredBill(
        calls=7500, free_calls=0, billable_calls=7500, tier_lines=bill.tier_lines, monthly_fee_fen=0,
        subtotal_fen=54_500, cap_fen=None, capped=False, total_fen=54_500,
    )


def test_free_calls_are_the_first_calls_and_do_not_shift_the_tiers() -> None:
    bill = metered_bill(metered(THREE_TIERS, free=1500), 7500)
    # Calls 1-1500 are free: all of tier 1 and 500 of tier 2; 1501-5000 at 8 fen, 5001-7500 at 5.
    assert [line.calls for line in bill.tier_lines] == [0, 3500, 2500]
    assert (bill.billable_calls, bill.total_fen) == (6000, 3500 * 8 + 2500 * 5)


def test_free_calls_covering_everything_leave_only_the_monthly_fee() -> None:
    assert metered_bill(metered(THREE_TIERS, free=10_000), 7500).total_fen == 0
    bill = metered_bill(metered(THREE_TIERS, free=10_000, fee=9900), 10_000)
    assert (bill.billable_calls, bill.subtotal_fen, bill.total_fen) == (0, 9900, 9900)
    assert metered_bill(metered(THREE_TIERS, free=10_000), 10_001).total_fen == 5


def test_monthly_fee_is_charged_with_zero_calls() -> None:
    bill = metered_bill(metered(THREE_TIERS, fee=9900), 0)
    assert all(line.calls == 0 and line.amount_fen == 0 for line in bill.tier_lines)
    assert (bill.monthly_fee_fen, bill.subtotal_fen, bill.capped, bill.total_fen) == (9900, 9900, False, 9900)


def test_cap_bounds_the_whole_bill_monthly_fee_included() -> None:
    plan = metered(THREE_TIERS, fee=9900, cap=50_000)
    reached = metered_bill(plan, 7500)
    assert (reached.subtotal_fen, reached.cap_fen, reached.capped, reached.total_fen) == (64_400, 50_000, True, 50_000)
    below = metered_bill(plan, 1000)
    assert (below.capped, below.total_fen) == (False, 19_900)
    exactly = metered_bill(metered(THREE_TIERS, fee=9900, cap=19_900), 1000)
    assert (exactly.capped, exactly.total_fen) == (False, 19_900)


def test_a_cap_below_the_monthly_fee_cuts_the_fee() -> None:
    bill = metered_bill(metered(THREE_TIERS, fee=9900, cap=5000), 0)
    assert (bill.subtotal_fen, bill.capped, bill.total_fen) == (9900, True, 5000)


def test_the_last_tier_price_applies_past_a_bounded_last_tier() -> None:
    bill = metered_bill(metered([(100, 10), (200, 5)]), 250)
    assert bill.tier_lines == [TierLine(100, 100, 10, 1000), TierLine(200, 150, 5, 750)]
    assert bill.total_fen == 1750


def test_plan_may_be_a_struct_or_a_dict_without_kind() -> None:
    plan = metered(THREE_TIERS, fee=100, free=10, cap=20_000)
    struct = msgspec.convert(plan, MeteredPlan)
    without_kind = {key: value for key, value in plan.items() if key not in ("kind", "id")}
    assert metered_bill(struct, 3000) == metered_bill(plan, 3000) == metered_bill(without_kind, 3000)


@pytest.mark.parametrize(
    "plan",
    [
        {**metered(THREE_TIERS), "kind": "fixed"},
        metered([(5000, 8), (1000, 10), (None, 5)]),
        metered([(None, 8), (None, 5)]),
        metered([(1000, -1)]),
        {**metered(THREE_TIERS), "monthly_fee": {"amount": 100, "currency": "USD"}},
    ],
    ids=["wrong kind", "tiers out of order", "two open tiers", "negative price", "two currencies"],
)
def test_invalid_plans_are_refused(plan: dict) -> None:
    with pytest.raises(ValueError):
        metered_bill(plan, 10)


def test_calls_must_be_a_non_negative_int() -> None:
    with pytest.raises(ValueError):
        metered_bill(metered(THREE_TIERS), -1)
    for wrong in (True, 1.0, "3"):
        with pytest.raises(TypeError):
            metered_bill(metered(THREE_TIERS), wrong)  # type: ignore[arg-type]


def test_credit_exposure_is_the_bill_of_the_calls_so_far() -> None:
    plan = metered(THREE_TIERS, fee=9900, cap=50_000)
    assert credit_exposure(0, plan) == 9900
    assert credit_exposure(1000, plan) == 19_900
    assert credit_exposure(1_000_000, plan) == 50_000


# ── metered: properties ──────────────────────────────────────────────────────────────────────────


@st.composite
def metered_plans(draw: st.DrawFn) -> dict:
    bounds = sorted(draw(st.sets(st.integers(1, 3000), min_size=0, max_size=4)))
    open_last = draw(st.booleans()) or not bounds
    limits: list[int | None] = [*bounds, None] if open_last else list(bounds)
    prices = draw(st.lists(st.integers(0, 1000), min_size=len(limits), max_size=len(limits)))
    return metered(
        list(zip(limits, prices, strict=True)),
        fee=draw(st.none() | st.integers(0, 100_000)),
        free=draw(st.integers(0, 2000)),
        cap=draw(st.none() | st.integers(0, 2_000_000)),
    )


def reference_subtotal(plan: dict, calls: int) -> int:
    """Price call by call: call n costs the price of the first tier with n <= up_to (the last
    tier when none), unless n is among the free calls."""
    tiers = plan["tiers"]
    total = 0
    for number in range(plan["free_calls"] + 1, calls + 1):
        tier = next((t for t in tiers if t["up_to"] is not None and number <= t["up_to"]), tiers[-1])
        total += tier["price"]["amount"]
    return total + (plan["monthly_fee"]["amount"] if "monthly_fee" in plan else 0)


@PROPERTIES
@given(metered_plans(), st.integers(0, 5000))
def test_bill_matches_pricing_call_by_call(plan: dict, calls: int) -> None:
    bill = metered_bill(plan, calls)
    assert bill.subtotal_fen == reference_subtotal(plan, calls)


@PROPERTIES
@given(metered_plans(), st.integers(0, 10_000), st.integers(0, 10_000))
def test_bill_is_monotone_in_calls(plan: dict, some: int, more: int) -> None:
    fewer, more = sorted((some, more))
    assert metered_bill(plan, fewer).total_fen <= metered_bill(plan, more).total_fen
    assert metered_bill(plan, fewer).subtotal_fen <= metered_bill(plan, more).subtotal_fen


@PROPERTIES
@given(metered_plans(), st.integers(0, 1_000_000))
def test_bill_adds_up_and_never_exceeds_the_cap(plan: dict, calls: int) -> None:
    bill = metered_bill(plan, calls)
    assert len(bill.tier_lines) == len(plan["tiers"])
    assert sum(line.calls for line in bill.tier_lines) == bill.billable_calls == max(0, calls - bill.free_calls)
    assert all(line.amount_fen == line.calls * line.unit_price_fen for line in bill.tier_lines)
    assert bill.subtotal_fen == sum(line.amount_fen for line in bill.tier_lines) + bill.monthly_fee_fen
    if bill.cap_fen is None:
        assert (bill.capped, bill.total_fen) == (False, bill.subtotal_fen)
    else:
        assert bill.total_fen == min(bill.subtotal_fen, bill.cap_fen) <= bill.cap_fen
        assert bill.capped == (bill.subtotal_fen > bill.cap_fen)
    assert credit_exposure(calls, plan) == bill.total_fen
    assert all(isinstance(value, int) for value in (bill.subtotal_fen, bill.total_fen, bill.monthly_fee_fen))


# ── revenue share ────────────────────────────────────────────────────────────────────────────────


def test_revenue_share_below_the_minimum_bills_the_minimum() -> None:
    bill = revenue_share_bill(1500, 100_000, 500_000)
    assert (bill.share_fen, bill.billed_fen, bill.true_up_fen) == (75_000, 100_000, 100_000)


def test_revenue_share_above_the_minimum_bills_the_share() -> None:
    bill = revenue_share_bill(1500, 100_000, 1_000_000)
    assert (bill.reported_revenue_fen, bill.share_bps, bill.minimum_fen) == (1_000_000, 1500, 100_000)
    assert (bill.share_fen, bill.billed_fen, bill.true_up_fen) == (150_000, 150_000, 150_000)


@pytest.mark.parametrize(("bps", "revenue", "share"), [(1, 5000, 1), (1, 4999, 0), (1, 15_000, 2), (3333, 3, 1), (10_000, 7, 7)])
def test_revenue_share_rounds_half_up_to_the_fen(bps: int, revenue: int, share: int) -> None:
    assert revenue_share_bill(bps, 0, revenue).share_fen == share


def test_true_up_is_negative_when_the_period_was_overbilled() -> None:
    restated = revenue_share_bill(1500, 100_000, 800_000, previously_billed_fen=150_000)
    assert (restated.billed_fen, restated.true_up_fen) == (120_000, -30_000)
    down_to_minimum = revenue_share_bill(1500, 100_000, 0, previously_billed_fen=150_000)
    assert (down_to_minimum.billed_fen, down_to_minimum.true_up_fen) == (100_000, -50_000)
    assert revenue_share_bill(1500, 100_000, 1_000_000, previously_billed_fen=150_000).true_up_fen == 0


@pytest.mark.parametrize(
    "arguments",
    [(10_001, 0, 100, 0), (-1, 0, 100, 0), (100, -1, 100, 0), (100, 0, -1, 0), (100, 0, 100, -1)],
)
def test_revenue_share_refuses_out_of_range_numbers(arguments: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        revenue_share_bill(*arguments)


@PROPERTIES
@given(st.integers(0, 10_000), st.integers(0, 10**9), st.integers(0, 10**12), st.integers(0, 10**9))
def test_revenue_share_is_the_rounded_share_floored_at_the_minimum(bps: int, minimum: int, revenue: int, previous: int) -> None:
    bill = revenue_share_bill(bps, minimum, revenue, previous)
    exact_times_two = 2 * revenue * bps  # twice the share, in 1/10,000 fen: compare without division
    assert 2 * bill.share_fen * 10_000 - 10_000 <= exact_times_two < 2 * bill.share_fen * 10_000 + 10_000
    assert bill.billed_fen == max(bill.share_fen, minimum)
    assert bill.true_up_fen == bill.billed_fen - previous


# ── billing cycles ───────────────────────────────────────────────────────────────────────────────


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_cycles_are_shanghai_calendar_months_in_utc() -> None:
    assert billing_cycles(utc(2025, 1, 15), utc(2025, 3, 10)) == [
        (utc(2025, 1, 15), utc(2025, 1, 31, 16)),  # Shanghai's 1 February starts at 16:00 UTC
        (utc(2025, 1, 31, 16), utc(2025, 2, 28, 16)),
        (utc(2025, 2, 28, 16), utc(2025, 3, 10)),
    ]


def test_a_whole_month_is_one_cycle_and_inputs_may_be_in_any_zone() -> None:
    january = (datetime(2025, 1, 1, tzinfo=SHANGHAI), datetime(2025, 2, 1, tzinfo=SHANGHAI))
    assert billing_cycles(*january) == [(utc(2024, 12, 31, 16), utc(2025, 1, 31, 16))]
    assert all(moment.tzinfo is UTC for cycle in billing_cycles(*january) for moment in cycle)


def test_a_month_whose_midnight_was_skipped_starts_at_its_first_instant() -> None:
    # Shanghai's clocks went from 00:00 to 01:00 on 1 June 1940.
    cycles = billing_cycles(utc(1940, 5, 15), utc(1940, 6, 15))
    assert cycles[0][1] == utc(1940, 5, 31, 16)
    assert cycles[0][1].astimezone(SHANGHAI).replace(tzinfo=None) == datetime(1940, 6, 1, 1)


def test_cycles_of_an_empty_range_and_refusals() -> None:
    assert billing_cycles(utc(2025, 1, 1), utc(2025, 1, 1)) == []
    with pytest.raises(ValueError):
        billing_cycles(utc(2025, 2, 1), utc(2025, 1, 1))
    with pytest.raises(ValueError):
        billing_cycles(datetime(2025, 1, 1), utc(2025, 2, 1))


ZONES = ["Asia/Shanghai", "America/Sao_Paulo", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe"]
MOMENTS = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC))
TICK = timedelta(microseconds=1)


@PROPERTIES
@given(MOMENTS, st.timedeltas(timedelta(0), timedelta(days=1500)), st.sampled_from(ZONES))
def test_cycles_tile_the_range_one_calendar_month_each(start: datetime, length: timedelta, zone_name: str) -> None:
    end = start + length
    zone = ZoneInfo(zone_name)
    cycles = billing_cycles(start, end, zone_name)
    if start == end:
        assert cycles == []
        return
    assert cycles[0][0] == start and cycles[-1][1] == end
    assert all(earlier[1] == later[0] for earlier, later in itertools.pairwise(cycles))  # no gaps, no overlaps
    for cycle_start, cycle_end in cycles:
        assert cycle_start < cycle_end
        first, last = cycle_start.astimezone(zone), (cycle_end - TICK).astimezone(zone)
        assert (first.year, first.month) == (last.year, last.month)
    for boundary, _ in cycles[1:]:  # every cut but the range's own ends is a month's first instant
        local, before = boundary.astimezone(zone), (boundary - TICK).astimezone(zone)
        assert local.day == 1 and (before.year, before.month) != (local.year, local.month)
    first_local, last_local = start.astimezone(zone), (end - TICK).astimezone(zone)
    assert len(cycles) == (last_local.year - first_local.year) * 12 + last_local.month - first_local.month + 1


# ── usage ledger ─────────────────────────────────────────────────────────────────────────────────

NOON = utc(2025, 3, 1, 12)


def record(batch: str, record_id: str, at: datetime, calls: int) -> UsageRecord:
    return UsageRecord(batch_id=batch, record_id=record_id, at=at, calls=calls)


def test_add_batch_counts_new_records_and_duplicate_ids_once() -> None:
    ledger = UsageLedger()
    batch = [record("b1", "r1", NOON, 5), record("b1", "r2", NOON, 3), record("b1", "r1", NOON, 7)]
    assert ledger.add_batch("b1", batch) == 2
    assert (ledger.record_count, ledger.total_calls) == (2, 8)  # the first r1 counts, the repeat not
    assert ledger.calls_between(NOON, NOON + TICK) == 8


def test_a_batch_seen_before_is_ignored_entirely() -> None:
    ledger = UsageLedger()
    assert ledger.add_batch("b1", [record("b1", "r1", NOON, 5)]) == 1
    assert ledger.add_batch("b1", [record("b1", "r1", NOON, 5)]) == 0
    assert ledger.add_batch("b1", [record("b1", "r9", NOON, 50)]) == 0  # even with new content
    assert (ledger.has_batch("b1"), ledger.record_count, ledger.total_calls) == (True, 1, 5)
    assert ledger.add_batch("b2", [record("b2", "r1", NOON, 4)]) == 1  # record ids are per batch
    assert ledger.total_calls == 9


def test_an_empty_batch_is_remembered() -> None:
    ledger = UsageLedger()
    assert ledger.add_batch("b1", []) == 0
    assert ledger.has_batch("b1")
    assert ledger.add_batch("b1", [record("b1", "r1", NOON, 5)]) == 0


def test_a_batch_with_a_foreign_record_is_refused_whole() -> None:
    ledger = UsageLedger()
    with pytest.raises(ValueError):
        ledger.add_batch("b1", [record("b1", "r1", NOON, 5), record("b2", "r2", NOON, 3)])
    assert (ledger.has_batch("b1"), ledger.record_count, ledger.total_calls) == (False, 0, 0)


def test_calls_between_is_half_open_and_exact_to_the_microsecond() -> None:
    ledger = UsageLedger()
    ledger.add_batch("b", [
        record("b", "before", NOON - TICK, 1),
        record("b", "at start", NOON, 10),
        record("b", "inside", NOON + timedelta(hours=5, minutes=7), 100),
        record("b", "last", NOON + timedelta(days=2) - TICK, 1000),
        record("b", "at end", NOON + timedelta(days=2), 10_000),
    ])
    assert ledger.calls_between(NOON, NOON + timedelta(days=2)) == 1110
    assert ledger.calls_between(NOON - TICK, NOON) == 1
    assert ledger.calls_between(NOON, NOON) == 0
    shanghai_noon = NOON.astimezone(SHANGHAI)
    assert ledger.calls_between(shanghai_noon, shanghai_noon + timedelta(hours=6)) == 110
    with pytest.raises(ValueError):
        ledger.calls_between(NOON, NOON - TICK)
    with pytest.raises(ValueError):
        ledger.calls_between(datetime(2025, 3, 1), NOON)


def test_calls_between_bounds_inside_hours() -> None:
    ledger = UsageLedger()
    start, end = utc(2025, 3, 1, 10, 15), utc(2025, 3, 1, 12, 30)
    ledger.add_batch("b", [
        record("b", "before", start - TICK, 1),
        record("b", "at start", start, 10),
        record("b", "whole hour", utc(2025, 3, 1, 11, 20), 100),
        record("b", "last", end - TICK, 1000),
        record("b", "at end", end, 10_000),
    ])
    assert ledger.calls_between(start, end) == 1110
    assert ledger.calls_between(start + TICK, end + TICK) == 11_100
    assert ledger.calls_between(utc(2025, 3, 1, 12), end) == 1000


def test_usage_over_the_cycles_sums_to_the_total() -> None:
    ledger = UsageLedger()
    moments = [utc(2025, 1, 31, 15, 59, 59, 999_999), utc(2025, 1, 31, 16), utc(2025, 2, 14), utc(2025, 2, 28, 16)]
    ledger.add_batch("b", [record("b", str(n), at, 10**n) for n, at in enumerate(moments)])
    cycles = billing_cycles(utc(2025, 1, 1), utc(2025, 4, 1))
    assert [ledger.calls_between(*cycle) for cycle in cycles] == [1, 110, 1000, 0]


def test_usage_records_are_checked() -> None:
    with pytest.raises(ValueError):
        record("b", "r", datetime(2025, 3, 1), 1)  # naive
    with pytest.raises(ValueError):
        record("b", "r", NOON.astimezone(SHANGHAI), 1)  # aware, but not UTC
    with pytest.raises(ValueError):
        record("b", "r", NOON, -1)
    with pytest.raises(TypeError):
        record("b", "r", NOON, 1.5)  # type: ignore[arg-type]


WINDOW_START = utc(2025, 3, 1)
# Moments over three days, often at an hour's first or last microsecond, or its middle, so that
# records and query bounds share hours and hour edges.
USAGE_MOMENTS = st.one_of(
    st.builds(
        lambda hour, micros: WINDOW_START + timedelta(hours=hour, microseconds=micros),
        st.integers(0, 72),
        st.sampled_from([0, 1, 1_800_000_000, 3_599_999_999]),
    ),
    st.integers(0, 72 * 3600 * 10**6).map(lambda micros: WINDOW_START + timedelta(microseconds=micros)),
)


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[str, list[UsageRecord]]]:
    """Distinct batches, some repeated verbatim (a redelivery); record ids repeat within a batch."""
    count = draw(st.integers(0, 6))
    distinct = []
    for number in range(count):
        batch_id = f"batch-{number}"
        rows = draw(st.lists(st.tuples(st.sampled_from("abcdefgh"), USAGE_MOMENTS, st.integers(0, 1000)), max_size=12))
        distinct.append((batch_id, [record(batch_id, record_id, at, calls) for record_id, at, calls in rows]))
    repeats = draw(st.lists(st.sampled_from(distinct), max_size=4)) if distinct else []
    return distinct + repeats


def reference_calls(deliveries: list[tuple[str, list[UsageRecord]]], start: datetime, end: datetime) -> int:
    counted: dict[tuple[str, str], UsageRecord] = {}
    seen_batches: set[str] = set()
    for batch_id, records in deliveries:
        if batch_id in seen_batches:
            continue
        seen_batches.add(batch_id)
        for row in records:
            counted.setdefault((batch_id, row.record_id), row)
    return sum(row.calls for row in counted.values() if start <= row.at < end)


def ledger_of(deliveries: list[tuple[str, list[UsageRecord]]]) -> UsageLedger:
    ledger = UsageLedger()
    for batch_id, records in deliveries:
        ledger.add_batch(batch_id, records)
    return ledger


@PROPERTIES
@given(batches(), USAGE_MOMENTS, USAGE_MOMENTS)
def test_ledger_matches_a_flat_list_of_records(deliveries: list, one: datetime, other: datetime) -> None:
    start, end = sorted((one, other))
    ledger = ledger_of(deliveries)
    assert ledger.calls_between(start, end) == reference_calls(deliveries, start, end)
    assert ledger.total_calls == reference_calls(deliveries, WINDOW_START, WINDOW_START + timedelta(days=4))


@PROPERTIES
@given(batches())
def test_adding_a_batch_again_changes_nothing(deliveries: list) -> None:
    ledger = ledger_of(deliveries)
    before = (ledger.record_count, ledger.total_calls)
    for batch_id, records in deliveries:
        assert ledger.add_batch(batch_id, records) == 0
    assert (ledger.record_count, ledger.total_calls) == before


@PROPERTIES
@given(batches().flatmap(lambda deliveries: st.tuples(st.just(deliveries), st.permutations(deliveries))), USAGE_MOMENTS)
def test_any_order_of_batches_gives_the_same_totals(pair: tuple[list, list], cut: datetime) -> None:
    deliveries, shuffled = pair
    in_order, reordered = ledger_of(deliveries), ledger_of(shuffled)
    assert (in_order.record_count, in_order.total_calls) == (reordered.record_count, reordered.total_calls)
    for start, end in [(WINDOW_START, cut), (cut, WINDOW_START + timedelta(days=4)), (cut, cut + timedelta(hours=1))]:
        assert in_order.calls_between(start, end) == reordered.calls_between(start, end)
