"""Judging orders, and reading the trading, fee and settlement rules, by a rulebook. Pure: no
I/O and no clock; callers pass every time (aware datetimes) and every count.

An order's refusals are Violations like a listing's (evaluate.py): a stable rule id, what to
fix, and the place in the rule file that decided (`trading.toml: quota.tick_fen`)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from exchange.rulebook.evaluate import Violation
from exchange.rulebook.model import (
    DAY_MINUTES,
    WEEKDAYS,
    AccessRule,
    Category,
    FeeSchedule,
    OrderRules,
    QuotaRules,
    Rulebook,
    SessionRules,
    iso_date,
)

BPS = 10_000
"""Basis points in a whole."""
SIDES = frozenset({"buy", "sell"})
ORDER_TYPES = frozenset({"limit", "market", None})
QUANTITY_CAPPED_KINDS = frozenset({"fixed", "subscription"})
"""Plan kinds whose buys `[orders] quantity_max` limits."""


@dataclass(frozen=True)
class OrderFacts:
    """What the trading rules may ask about an order, gathered by the caller."""

    category: str
    """The listing's category code."""
    grade: str
    """The listing's grade code."""
    plan_kind: str
    """The plan the order is on: "quota" (a continuous book), "auction", "fixed", ..."""
    side: str
    """"buy" or "sell"; only buys are asked who the buyer is."""
    order_type: str | None
    """"limit" or "market" on a continuous book; None elsewhere."""
    price_fen: int | None
    """A limit price per unit, in fen; None for market orders and fixed-price buys."""
    quantity: int
    reference_price_fen: int | None
    """The book's reference price (the price band's centre); None while it has none."""
    buyer_qualifications: frozenset[str]
    purpose: str | None
    """The purpose the buyer declares; None when none is declared."""
    at: datetime
    """When the order is placed; aware (UTC)."""
    expires_at: datetime | None
    """When a good-till-cancelled order lapses; None when the order asks for no lifetime."""
    orders_last_minute: int
    """Orders the participant placed in the minute before `at`, not counting this one."""


def check_order(rulebook: Rulebook, facts: OrderFacts) -> list[Violation]:
    """Every rule `facts` break, in a stable order; empty: the order may be placed. Raises
    ValueError for facts no order has (a naive datetime, side "BUY"): a caller's mistake, which
    must not pass as a sell that skips the buyer checks."""
    if facts.side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(sorted(SIDES))}, not {facts.side!r}")
    if facts.order_type not in ORDER_TYPES:
        raise ValueError(f"order_type must be limit, market or None, not {facts.order_type!r}")
    _aware(facts.at, "at")
    if facts.expires_at is not None:
        _aware(facts.expires_at, "expires_at")
    trading = rulebook.trading
    violations = list(_session_at(trading.sessions, facts.at))
    violations += _orders(trading.orders, facts)
    if facts.plan_kind == "quota":
        violations += _quota(rulebook, trading.quota, facts)
    if facts.plan_kind == "auction" and facts.quantity > trading.auction.bid_quantity_max:
        violations.append(
            Violation(
                "trading.auction.bid_quantity_max",
                f"A bid may ask for at most {trading.auction.bid_quantity_max} licence(s); "
                f"this one asks for {facts.quantity}.",
                "trading.toml: auction.bid_quantity_max",
            )
        )
    if facts.side == "buy":
        violations += _catalogue_access(rulebook, facts)
        violations += _access(trading.access, facts)
    return violations


def check_auction(rulebook: Rulebook, starts_at: datetime, ends_at: datetime) -> list[Violation]:
    """The rules an auction accepting bids from `starts_at` to `ends_at` breaks."""
    _aware(starts_at, "starts_at")
    _aware(ends_at, "ends_at")
    hours = rulebook.trading.auction.duration_hours_max
    if ends_at - starts_at <= timedelta(hours=hours):
        return []
    return [
        Violation(
            "trading.auction.duration_hours_max",
            f"An auction may accept bids for at most {hours} hours; this one would for "
            f"{_hours(ends_at - starts_at)}.",
            "trading.toml: auction.duration_hours_max",
        )
    ]


def in_session(rulebook: Rulebook, at: datetime) -> bool:
    """Whether orders are accepted at `at` (aware): a trading day, not a holiday, between the
    opening time (inclusive) and the closing time (exclusive), all read in the session's zone."""
    _aware(at, "at")
    return next(_session(rulebook.trading.sessions, at), None) is None


def price_band(rulebook: Rulebook, reference_price_fen: int) -> tuple[int, int]:
    """The lowest and highest limit price (inclusive, in fen, multiples of the tick) a
    continuous book accepts around `reference_price_fen`.

    The exact band, reference × (1 ± price_band_bps / 10000), is rounded inwards to the tick,
    and its low end is at least one tick. When that leaves no price (a band narrower than a
    tick), the band is the one tick multiple nearest the reference (halves up), at least one
    tick."""
    _fen(reference_price_fen, "reference_price_fen", positive=True)
    quota = rulebook.trading.quota
    tick, bps = quota.tick_fen, quota.price_band_bps
    low = -(-reference_price_fen * (BPS - bps) // (BPS * tick)) * tick
    high = reference_price_fen * (BPS + bps) // (BPS * tick) * tick
    low = max(low, tick)
    if low > high:
        nearest = max(tick, (2 * reference_price_fen + tick) // (2 * tick) * tick)
        return nearest, nearest
    return low, high


def fee_for(
    rulebook: Rulebook,
    plan_kind: str,
    notional_fen: int,
    buyer_monthly_volume_fen: int,
    vendor_monthly_volume_fen: int,
) -> tuple[int, int]:
    """(buyer's fee, vendor's fee) in fen on a trade of `notional_fen` under a plan of
    `plan_kind`, each party's tier found from its own volume this month (before this trade).

    Per side: fee = notional × bps / 10000 rounded half up to a whole fen (ties go to the
    exchange); raised to `minimum_fen` when the side's rate is above 0; never above the
    notional. A plan kind without a schedule pays (0, 0). Integers only."""
    _fen(notional_fen, "notional_fen")
    _fen(buyer_monthly_volume_fen, "buyer_monthly_volume_fen")
    _fen(vendor_monthly_volume_fen, "vendor_monthly_volume_fen")
    schedule = rulebook.fees.schedule(plan_kind)
    if schedule is None:
        return 0, 0
    buyer_bps, _ = _rates(schedule, buyer_monthly_volume_fen)
    _, vendor_bps = _rates(schedule, vendor_monthly_volume_fen)
    return (
        _side_fee(notional_fen, buyer_bps, schedule.minimum_fen),
        _side_fee(notional_fen, vendor_bps, schedule.minimum_fen),
    )


def tiered_sides(rulebook: Rulebook, plan_kind: str) -> tuple[bool, bool]:
    """Whether the buyer's and the vendor's rates under `plan_kind` depend on their monthly
    volume at all: when not, `fee_for` gives the same fees for any volume, and callers need
    not look it up."""
    schedule = rulebook.fees.schedule(plan_kind)
    if schedule is None:
        return False, False
    buyer = any(tier.buyer_bps is not None and tier.buyer_bps != schedule.buyer_bps for tier in schedule.tiers)
    vendor = any(tier.vendor_bps is not None and tier.vendor_bps != schedule.vendor_bps for tier in schedule.tiers)
    return buyer, vendor


def auction_price_rule(rulebook: Rulebook) -> str:
    """"nth" or "n_plus_one": the rule names of exchange.orders.auction.clear."""
    return rulebook.trading.auction.price_rule.value


def self_trade_policy(rulebook: Rulebook) -> str:
    """"cancel_taker", "cancel_maker" or "allow": what a continuous book does with a self-match."""
    return rulebook.trading.quota.self_trade.value


def settlement_windows(rulebook: Rulebook) -> tuple[timedelta, bool, timedelta]:
    """(time to confirm a delivery, confirm automatically when it passes, time to dispute a
    delivery), the windows counted from the delivery."""
    settlement = rulebook.settlement
    return (
        timedelta(hours=settlement.delivery_confirm_hours),
        settlement.auto_confirm,
        timedelta(hours=settlement.dispute_hours),
    )


# Orders


_last_session: list[Any] = [None, None, ()]  # the rules, the instant, and what _session said


def _session_at(sessions: SessionRules, at: datetime) -> tuple[Violation, ...]:
    """`_session`, remembered for the latest instant: the order desk checks a batch's orders
    all at one instant, and the local time and its wording cost more than the rest of the check."""
    if _last_session[0] is not sessions or _last_session[1] != at:
        _last_session[:] = [sessions, at, tuple(_session(sessions, at))]
    violations: tuple[Violation, ...] = _last_session[2]
    return violations


def _session(sessions: SessionRules, at: datetime) -> Iterator[Violation]:
    """At most one Violation: the holiday, the day or the hours that close trading at `at`."""
    zone = sessions.timezone
    local = at.astimezone(zoneinfo.ZoneInfo(zone))
    day = WEEKDAYS[local.weekday()]
    now = f"it is {day} {local:%Y-%m-%d %H:%M} in {zone}"
    for index, holiday in enumerate(sessions.holidays):
        if iso_date(holiday) == local.date():
            yield Violation(
                "trading.sessions.holidays",
                f"{holiday} is a holiday: there is no trading ({now}).",
                f"trading.toml: sessions.holidays[{index}]",
            )
            return
    hours = f"{', '.join(sessions.days)} from {sessions.open} to {sessions.close} ({zone})"
    if day not in sessions.days:
        yield Violation(
            "trading.sessions",
            f"Trading is open {hours}; {now}.",
            "trading.toml: sessions.days",
        )
        return
    minute = local.hour * 60 + local.minute
    assert minute < DAY_MINUTES
    if minute < sessions.open_minute():
        yield Violation("trading.sessions", f"Trading is open {hours}; {now}.", "trading.toml: sessions.open")
    elif minute >= sessions.close_minute():
        yield Violation("trading.sessions", f"Trading is open {hours}; {now}.", "trading.toml: sessions.close")


def _orders(rules: OrderRules, facts: OrderFacts) -> Iterator[Violation]:
    if facts.orders_last_minute >= rules.rate_per_minute_max:
        yield Violation(
            "trading.orders.rate_per_minute_max",
            f"A participant may place at most {rules.rate_per_minute_max} orders a minute; "
            f"you placed {facts.orders_last_minute} in the last minute. Wait a moment.",
            "trading.toml: orders.rate_per_minute_max",
        )
    if facts.side == "buy" and facts.plan_kind in QUANTITY_CAPPED_KINDS and facts.quantity > rules.quantity_max:
        yield Violation(
            "trading.orders.quantity_max",
            f"One buy of a {facts.plan_kind} plan may ask for at most {rules.quantity_max} licence(s); "
            f"this one asks for {facts.quantity}.",
            "trading.toml: orders.quantity_max",
        )


def _quota(rulebook: Rulebook, rules: QuotaRules, facts: OrderFacts) -> Iterator[Violation]:
    price = facts.price_fen
    if price is not None and facts.reference_price_fen is not None and facts.reference_price_fen > 0:
        low, high = price_band(rulebook, facts.reference_price_fen)
        if not low <= price <= high:
            yield Violation(
                "trading.quota.price_band",
                f"The price {price} fen is outside the price band, {low} to {high} fen "
                f"(±{rules.price_band_bps / 100:g}% of the reference price {facts.reference_price_fen} fen).",
                "trading.toml: quota.price_band_bps",
            )
    if price is not None and price % rules.tick_fen:
        yield Violation(
            "trading.quota.tick_fen",
            f"Prices go in steps of {rules.tick_fen} fen; {price} fen is not one.",
            "trading.toml: quota.tick_fen",
        )
    if facts.quantity % rules.lot:
        yield Violation(
            "trading.quota.lot",
            f"Quantities go in lots of {rules.lot}; {facts.quantity} is not a whole number of lots.",
            "trading.toml: quota.lot",
        )
    if facts.quantity > rules.order_quantity_max:
        yield Violation(
            "trading.quota.order_quantity_max",
            f"An order may ask for at most {rules.order_quantity_max}; this one asks for {facts.quantity}.",
            "trading.toml: quota.order_quantity_max",
        )
    if facts.expires_at is not None and facts.expires_at - facts.at > timedelta(days=rules.order_lifetime_days_max):
        yield Violation(
            "trading.quota.order_lifetime_days_max",
            f"An order may rest for at most {rules.order_lifetime_days_max} days; this one would for "
            f"{_days(facts.expires_at - facts.at)}.",
            "trading.toml: quota.order_lifetime_days_max",
        )


def _catalogue_access(rulebook: Rulebook, facts: OrderFacts) -> Iterator[Violation]:
    """catalogue.toml's per-category buyer lists. An unknown category is the listing's problem,
    refused when it was listed; it restricts nothing here."""
    found = next(
        ((index, category) for index, category in enumerate(rulebook.catalogue.categories) if category.code == facts.category),
        None,
    )
    if found is None:
        return
    index, category = found
    if category.buyer_qualifications and not facts.buyer_qualifications & set(category.buyer_qualifications):
        yield Violation(
            f"catalogue.categories.{category.code}.buyer_qualifications",
            f"To buy {_named(category)} data, a buyer must hold one of the qualifications "
            f"{', '.join(category.buyer_qualifications)}.",
            f"catalogue.toml: categories[{index}].buyer_qualifications",
        )
    if category.buyer_purposes and facts.purpose not in category.buyer_purposes:
        yield Violation(
            f"catalogue.categories.{category.code}.buyer_purposes",
            f"{_named(category)} data may be bought only for {_one_of(category.buyer_purposes)}; "
            f"{_declared(facts.purpose)}.",
            f"catalogue.toml: categories[{index}].buyer_purposes",
        )


def _access(entries: list[AccessRule], facts: OrderFacts) -> Iterator[Violation]:
    for index, entry in enumerate(entries):
        if (entry.categories and facts.category not in entry.categories) or (
            entry.grades and facts.grade not in entry.grades
        ):
            continue
        data = f"{facts.grade} {facts.category} data"
        if entry.qualifications_any and not facts.buyer_qualifications & set(entry.qualifications_any):
            yield Violation(
                f"trading.access.{entry.id}.qualifications_any",
                f"To buy {data}, a buyer must hold one of the qualifications {', '.join(entry.qualifications_any)}.",
                f"trading.toml: access[{index}].qualifications_any",
            )
        if entry.purposes_any and facts.purpose not in entry.purposes_any:
            yield Violation(
                f"trading.access.{entry.id}.purposes_any",
                f"{data[0].upper()}{data[1:]} may be bought only for {_one_of(entry.purposes_any)}; "
                f"{_declared(facts.purpose)}.",
                f"trading.toml: access[{index}].purposes_any",
            )


# Fees


def _rates(schedule: FeeSchedule, volume_fen: int) -> tuple[int, int]:
    """(buyer bps, vendor bps) for a party with `volume_fen` this month: its highest tier reached."""
    buyer, vendor = schedule.buyer_bps, schedule.vendor_bps
    for tier in schedule.tiers:  # increasing volume_from_fen (load.py checks)
        if volume_fen < tier.volume_from_fen:
            break
        buyer = schedule.buyer_bps if tier.buyer_bps is None else tier.buyer_bps
        vendor = schedule.vendor_bps if tier.vendor_bps is None else tier.vendor_bps
    return buyer, vendor


def _side_fee(notional_fen: int, bps: int, minimum_fen: int) -> int:
    if bps == 0:
        return 0
    fee = (notional_fen * bps + BPS // 2) // BPS  # half a fen and more rounds up
    return min(max(fee, minimum_fen), notional_fen)


# Helpers


def _aware(at: datetime, name: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), not {at!r}")


def _fen(amount: int, name: str, *, positive: bool = False) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < (1 if positive else 0):
        wanted = "a positive" if positive else "a non-negative"
        raise ValueError(f"{name} must be {wanted} integer of fen, not {amount!r}")


def _named(category: Category) -> str:
    return f"{category.name_en} ({category.name_zh})"


def _one_of(purposes: list[str]) -> str:
    return purposes[0] if len(purposes) == 1 else "one of " + ", ".join(purposes)


def _declared(purpose: str | None) -> str:
    return "declare your purpose" if purpose is None else f"you declared {purpose!r}"


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} hours"


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:g} days"


def fee_splits(rulebook: Rulebook, total_fee_fen: int, category: str, sponsor_id: str | None) -> list[tuple[str, str, int]]:
    """How a settled trade's fees are shared: (share, recipient participant id, fen) for each
    share paid out of the exchange's fees; the exchange keeps the rest. Shares round down, so
    the exchange never pays out more than it collected."""
    _fen(total_fee_fen, "total_fee_fen")
    splits = rulebook.fees.splits
    shares = []
    if sponsor_id and splits.sponsor_bps:
        shares.append(("sponsor", sponsor_id, total_fee_fen * splits.sponsor_bps // 10_000))
    if splits.public_body_id and splits.public_body_bps and category in splits.public_categories:
        shares.append(("public_body", splits.public_body_id, total_fee_fen * splits.public_body_bps // 10_000))
    return [share for share in shares if share[2] > 0]
