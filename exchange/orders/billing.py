"""Billing for pay-after-use plans: metered (先用后付) and revenue share (按收益分成). Pure.

Money is integer fen throughout; the only division is the revenue share, rounded half up.

Metered plans (`MeteredPlan` in listings/schemas.py), per billing cycle:
- Calls are numbered 1, 2, 3, ... within the cycle. The first `free_calls` of them are free.
- Tiers are graduated, like tax brackets: call number n is charged the price of the tier whose
  range holds n, a tier covering the calls above the previous tier's `up_to` up to its own.
  Free calls therefore use up the start of the first tier(s); they do not shift the tiers.
- The last tier's price also applies past its `up_to` when it has one: a usage bill must price
  every call that happened, and stopping calls at a quota is the gateway's job, not billing's.
- `monthly_fee` is charged for every cycle, even with no calls, and is not prorated for a
  partial first or last cycle (prorating, if wanted, is the caller's decision).
- `monthly_cap` bounds the WHOLE bill, monthly fee included: the buyer never pays more than the
  cap in a cycle. A cap below the monthly fee therefore cuts the fee too.

Cycles are calendar months in the exchange's time zone (Asia/Shanghai), handled in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import msgspec

from exchange.listings.schemas import MeteredPlan

EXCHANGE_ZONE = "Asia/Shanghai"
BPS_PER_WHOLE = 10_000
_ZERO = timedelta(0)


def _require_count(value: object, name: str) -> None:
    # bool is an int subclass; True calls is a caller's bug, not one call.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


# ── usage ──


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Calls a buyer made, as the gateway reports them. `record_id` is unique within its batch."""

    batch_id: str
    record_id: str
    at: datetime
    """When the calls happened; timezone-aware, in UTC."""
    calls: int

    def __post_init__(self) -> None:
        _require_count(self.calls, "calls")
        if self.at.tzinfo is None or self.at.utcoffset() != _ZERO:
            raise ValueError(f"at must be timezone-aware UTC, not {self.at!r}")


def _hour_of(moment: datetime) -> int:
    """Hours since 0001-01-01 of a UTC datetime: the bucket it is counted in."""
    return moment.toordinal() * 24 + moment.hour


def _on_the_hour(moment: datetime) -> bool:
    return moment.minute == 0 and moment.second == 0 and moment.microsecond == 0


class UsageLedger:
    """Calls per moment, aggregated from batches of usage records. In memory; the database is the
    record of truth, this only sums.

    Idempotent per batch id: a batch id seen before is ignored entirely, whatever it holds now
    (the first delivery of a batch wins). Within a batch a repeated record id counts once, as its
    first occurrence. Record ids are not compared across batches.

    Calls are kept per UTC hour (a running total) and, inside the hour, per exact moment. A
    range query takes whole hours from the totals and scans only an hour its ends cut, so it is
    exact to the microsecond and fast on a month of data (Shanghai's cycle bounds are on the hour).
    """

    __slots__ = ("_batch_ids", "_calls_by_hour", "_calls_by_moment", "_record_count", "_total_calls")

    def __init__(self) -> None:
        self._batch_ids: set[str] = set()
        self._calls_by_hour: dict[int, int] = {}
        self._calls_by_moment: dict[int, dict[datetime, int]] = {}
        self._record_count = 0
        self._total_calls = 0

    @property
    def record_count(self) -> int:
        """Records counted so far (after deduplication)."""
        return self._record_count

    @property
    def total_calls(self) -> int:
        return self._total_calls

    def has_batch(self, batch_id: str) -> bool:
        return batch_id in self._batch_ids

    def add_batch(self, batch_id: str, records: Iterable[UsageRecord]) -> int:
        """Count a batch once; return how many records it added (0 for a batch seen before).
        A record of another batch is refused before anything is counted."""
        if batch_id in self._batch_ids:
            return 0
        if not isinstance(records, (list, tuple)):
            records = list(records)
        # Built from the end, so that a repeated record id keeps its first occurrence.
        first_by_id = {record.record_id: record for record in reversed(records)}
        if records and {record.batch_id for record in records} != {batch_id}:
            raise ValueError(f"batch {batch_id!r} holds records of another batch")

        calls_by_hour = self._calls_by_hour
        calls_by_moment = self._calls_by_moment
        batch_calls = 0
        for record in first_by_id.values():
            at = record.at
            calls = record.calls
            hour = at.toordinal() * 24 + at.hour  # _hour_of, inlined: this loop is the hot path
            moments = calls_by_moment.get(hour)
            if moments is None:
                calls_by_moment[hour] = {at: calls}
                calls_by_hour[hour] = calls
            else:
                moments[at] = moments.get(at, 0) + calls
                calls_by_hour[hour] += calls
            batch_calls += calls

        self._batch_ids.add(batch_id)
        self._record_count += len(first_by_id)
        self._total_calls += batch_calls
        return len(first_by_id)

    def calls_between(self, start: datetime, end: datetime) -> int:
        """Calls made in [start, end). Both timezone-aware; any zone."""
        start, end = _as_utc(start, "start"), _as_utc(end, "end")
        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        first_hour, last_hour = _hour_of(start), _hour_of(end)
        calls_by_moment = self._calls_by_moment
        if first_hour == last_hour:
            moments = calls_by_moment.get(first_hour, {})
            return sum(calls for at, calls in moments.items() if start <= at < end)

        # Whole hours come from the running totals; only a partial hour at either end is scanned.
        total = 0
        whole_from = first_hour
        if not _on_the_hour(start):
            total += sum(calls for at, calls in calls_by_moment.get(first_hour, {}).items() if at >= start)
            whole_from += 1
        if not _on_the_hour(end):
            total += sum(calls for at, calls in calls_by_moment.get(last_hour, {}).items() if at < end)
        calls_by_hour = self._calls_by_hour
        # Walk whichever is shorter: the hours in the range, or the hours that have calls.
        if last_hour - whole_from <= len(calls_by_hour):
            total += sum(calls_by_hour.get(hour, 0) for hour in range(whole_from, last_hour))
        else:
            total += sum(calls for hour, calls in calls_by_hour.items() if whole_from <= hour < last_hour)
        return total


# ── metered ──


class TierLine(NamedTuple):
    up_to: int | None
    """The tier's `up_to` as the plan states it (None for an open last tier)."""
    calls: int
    """Billable calls that fell in this tier."""
    unit_price_fen: int
    amount_fen: int


@dataclass(frozen=True, slots=True)
class MeteredBill:
    calls: int
    free_calls: int
    """Free calls the plan grants per cycle (not how many were used: min(calls, free_calls))."""
    billable_calls: int
    tier_lines: list[TierLine]
    """One line per tier of the plan, in order, including tiers with no calls."""
    monthly_fee_fen: int
    subtotal_fen: int
    """Sum of the tier lines plus the monthly fee, before the cap."""
    cap_fen: int | None
    capped: bool
    """True when the cap lowered the bill."""
    total_fen: int


def _metered_plan(plan: Mapping[str, Any] | MeteredPlan) -> MeteredPlan:
    # Validates like the catalogue does (tier order, amounts); a wrong `kind` is refused here too.
    parsed = plan if isinstance(plan, MeteredPlan) else msgspec.convert(plan, MeteredPlan)
    currencies = {tier.price.currency for tier in parsed.tiers}
    currencies.update(money.currency for money in (parsed.monthly_fee, parsed.monthly_cap) if money is not None)
    if len(currencies) != 1:
        raise ValueError(f"a metered plan must price in one currency, not {sorted(currencies)}")
    return parsed


def metered_bill(plan: Mapping[str, Any] | MeteredPlan, calls: int) -> MeteredBill:
    """The bill for `calls` calls in one cycle of a metered plan (the plan as stored: a dict with
    `tiers`, `monthly_fee`, `free_calls`, `monthly_cap`; or a `MeteredPlan`).

    Graduated tiers; free calls are the first calls of the cycle; the monthly fee is always
    charged; the cap bounds the total INCLUDING the monthly fee:
    total = min(sum of tier lines + monthly fee, cap). No rounding: every amount is calls x an
    integer price in fen. Raises ValueError (msgspec.ValidationError) for an invalid plan."""
    _require_count(calls, "calls")
    metered = _metered_plan(plan)
    free_calls = metered.free_calls
    last_index = len(metered.tiers) - 1
    lines: list[TierLine] = []
    lower = 0  # the tier covers call numbers lower + 1 .. upper
    for index, tier in enumerate(metered.tiers):
        upper = calls if index == last_index or tier.up_to is None else min(tier.up_to, calls)
        in_tier = max(0, upper - max(lower, free_calls))
        price = tier.price.amount
        lines.append(TierLine(tier.up_to, in_tier, price, in_tier * price))
        if tier.up_to is not None:
            lower = tier.up_to

    monthly_fee = metered.monthly_fee.amount if metered.monthly_fee is not None else 0
    subtotal = sum(line.amount_fen for line in lines) + monthly_fee
    cap = metered.monthly_cap.amount if metered.monthly_cap is not None else None
    total = subtotal if cap is None else min(subtotal, cap)
    return MeteredBill(
        calls=calls,
        free_calls=free_calls,
        billable_calls=max(0, calls - free_calls),
        tier_lines=lines,
        monthly_fee_fen=monthly_fee,
        subtotal_fen=subtotal,
        cap_fen=cap,
        capped=total < subtotal,
        total_fen=total,
    )


def credit_exposure(unbilled_calls: int, plan: Mapping[str, Any] | MeteredPlan) -> int:
    """Fen the buyer owes so far in the open cycle: the bill of the calls so far, monthly fee
    and cap included, as the credit-limit check counts it."""
    return metered_bill(plan, unbilled_calls).total_fen


def billing_cycles(start: datetime, end: datetime, zone: str = EXCHANGE_ZONE) -> list[tuple[datetime, datetime]]:
    """Calendar-month cycles in `zone` that tile [start, end), as (start, end) pairs in UTC.

    Each cycle runs from the first instant of a local month to the first instant of the next;
    the first and last are cut to `start` and `end`. Empty when start == end."""
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    local_zone = ZoneInfo(zone)
    local_start = start.astimezone(local_zone)
    year, month = local_start.year, local_start.month
    cycles: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        # Local midnight; where a clock change skips it, fold=0 resolves to the first instant
        # that exists on the 1st.
        next_month = datetime(year, month, 1, tzinfo=local_zone).astimezone(UTC)
        cycle_end = min(next_month, end)
        cycles.append((cursor, cycle_end))
        cursor = cycle_end
    return cycles


# ── revenue share ──


@dataclass(frozen=True, slots=True)
class RevenueShareBill:
    reported_revenue_fen: int
    share_bps: int
    share_fen: int
    """reported_revenue_fen x share_bps / 10,000, rounded half up to the fen."""
    minimum_fen: int
    billed_fen: int
    """max(share_fen, minimum_fen): what the period costs."""
    true_up_fen: int
    """billed_fen - previously_billed_fen: to charge now; negative is a credit to the buyer."""


def revenue_share_bill(
    share_bps: int, minimum_fen: int, reported_revenue_fen: int, previously_billed_fen: int = 0
) -> RevenueShareBill:
    """The bill of one period of a revenue-share plan.

    share = reported revenue x share_bps / 10,000, rounded half up (0.5 fen goes to the vendor);
    billed = max(share, minimum). `previously_billed_fen` is what was already charged for this
    same period (an estimate, or a bill before the buyer restated revenue); the true-up is the
    difference, negative when the period was overbilled and the buyer is owed a credit."""
    for value, name in (
        (share_bps, "share_bps"),
        (minimum_fen, "minimum_fen"),
        (reported_revenue_fen, "reported_revenue_fen"),
        (previously_billed_fen, "previously_billed_fen"),
    ):
        _require_count(value, name)
    if share_bps > BPS_PER_WHOLE:
        raise ValueError(f"share_bps must be <= {BPS_PER_WHOLE}, not {share_bps}")
    # Half up, in integers: both factors are >= 0, so adding half the divisor rounds .5 upward.
    share = (reported_revenue_fen * share_bps + BPS_PER_WHOLE // 2) // BPS_PER_WHOLE
    billed = max(share, minimum_fen)
    return RevenueShareBill(
        reported_revenue_fen=reported_revenue_fen,
        share_bps=share_bps,
        share_fen=share,
        minimum_fen=minimum_fen,
        billed_fen=billed,
        true_up_fen=billed - previously_billed_fen,
    )


def month_of(at: datetime, zone: str = EXCHANGE_ZONE) -> tuple[datetime, datetime]:
    """The calendar month (in the exchange's zone) that contains `at`, as UTC [start, end)."""
    tz = ZoneInfo(zone)
    local = at.astimezone(tz)
    first = datetime(local.year, local.month, 1, tzinfo=tz)
    following = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=tz)
    return first.astimezone(UTC), following.astimezone(UTC)
