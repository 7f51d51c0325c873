"""Market surveillance (市场监察) under trading.toml's [surveillance]: a buyer may not gather
more than a set share of a category's licences within a window, and a quota book whose price
moves too far too fast is halted (熔断) until an operator resumes it."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.orders.schemas import CategoryConcentration, ConcentrationOut, Holder
from exchange.rulebook.evaluate import Violation
from exchange.rulebook.store import ActiveRules
from exchange.tables import Book, Contract, Listing, Trade

if TYPE_CHECKING:
    from exchange.orders.windows import NewTrade, TradeWindows

LICENCE_KINDS = ("fixed", "free", "subscription", "auction", "negotiated")
TOP_HOLDERS = 10


def _licences(since: datetime) -> sa.Select[tuple[str, str, int]]:
    licences = sa.case((Contract.plan_kind == "subscription", 1), else_=sa.cast(Contract.content["quantity"].as_string(), sa.Integer))
    return (
        sa.select(Listing.category, Contract.buyer_id, sa.func.sum(licences))
        .join(Listing, Listing.id == Contract.listing_id)
        .where(Contract.created_at >= since, Contract.status != "refunded", Contract.plan_kind.in_(LICENCE_KINDS))  # type: ignore[attr-defined]
        .group_by(Listing.category, Contract.buyer_id)
    )


async def concentration_violation(session: AsyncSession, rules: ActiveRules, category: str, buyer_id: str, licences: int, now: datetime) -> Violation | None:
    """Whether buying `licences` more would give the buyer too large a share of the category."""
    watch = rules.rulebook.trading.surveillance
    since = now - timedelta(days=watch.concentration_days)
    rows = (await session.execute(_licences(since).where(Listing.category == category))).all()
    total = sum(int(n) for _, _, n in rows) + licences
    mine = sum(int(n) for _, buyer, n in rows if buyer == buyer_id) + licences
    if total < watch.concentration_min_licences or mine * 10_000 <= watch.concentration_max_bps * total:
        return None
    return Violation(
        "trading.surveillance.concentration_max_bps",
        f"With this order the buyer would hold {mine} of the {total} {category} licences sold in {watch.concentration_days} days "
        f"({mine * 10_000 // total} bps), above the limit of {watch.concentration_max_bps} bps.",
        "trading.toml: surveillance.concentration_max_bps",
    )


class PriceWindow(msgspec.Struct, kw_only=True):
    """A book's trades within the circuit breaker's window: the first price, the range, how many."""

    first: int | None = None
    low: int = 0
    high: int = 0
    count: int = 0

    def add(self, price: int) -> None:
        if self.first is None:
            self.first, self.low, self.high = price, price, price
        self.low, self.high, self.count = min(self.low, price), max(self.high, price), self.count + 1


async def price_window(session: AsyncSession, rules: ActiveRules, listing_id: str, now: datetime) -> PriceWindow:
    since = now - timedelta(minutes=rules.rulebook.trading.surveillance.circuit_breaker_minutes)
    window = (Trade.listing_id == listing_id, Trade.at >= since)
    first = (await session.execute(sa.select(Trade.price).where(*window).order_by(Trade.seq, Trade.id).limit(1))).scalar_one_or_none()  # type: ignore[arg-type]
    if first is None:
        return PriceWindow()
    low, high, count = (await session.execute(sa.select(sa.func.min(Trade.price), sa.func.max(Trade.price), sa.func.count()).where(*window))).one()  # type: ignore[arg-type]
    return PriceWindow(first=int(first), low=int(low), high=int(high), count=int(count))


async def price_windows(session: AsyncSession, rules: ActiveRules, listing_ids: list[str], now: datetime) -> dict[str, PriceWindow]:
    """`price_window` of many books in three statements."""
    since = now - timedelta(minutes=rules.rulebook.trading.surveillance.circuit_breaker_minutes)
    window = (Trade.listing_id.in_(listing_ids), Trade.at >= since)  # type: ignore[attr-defined]
    windows = {listing_id: PriceWindow() for listing_id in listing_ids}
    ranges = (await session.execute(
        sa.select(Trade.listing_id, sa.func.min(Trade.price), sa.func.max(Trade.price), sa.func.count(), sa.func.min(Trade.seq))
        .where(*window).group_by(Trade.listing_id)  # type: ignore[arg-type]
    )).all()
    if not ranges:
        return windows
    firsts = (await session.execute(
        sa.select(Trade.listing_id, Trade.price, Trade.id)
        .where(*window, sa.tuple_(Trade.listing_id, Trade.seq).in_([(listing_id, first_seq) for listing_id, *_, first_seq in ranges]))  # type: ignore[arg-type]
    )).all()
    first_price: dict[str, tuple[str, int]] = {}
    for listing_id, price, trade_id in firsts:
        if listing_id not in first_price or trade_id < first_price[listing_id][0]:
            first_price[listing_id] = (trade_id, int(price))
    for listing_id, low, high, count, _ in ranges:
        windows[listing_id] = PriceWindow(first=first_price[listing_id][1], low=int(low), high=int(high), count=int(count))
    return windows


_WINDOW_TRADE = (Trade.listing_id, Trade.id, Trade.seq, Trade.price, Trade.at)  # type: ignore[var-annotated]
_WHOLE_WINDOWS = sa.text(
    "SELECT listing_id, id, seq, price, at FROM trades WHERE listing_id = ANY(CAST(:listing_ids AS VARCHAR[])) AND at >= :since"
).bindparams(sa.bindparam("since", type_=Trade.__table__.c.at.type)).columns(*(c.expression for c in _WINDOW_TRADE))  # type: ignore[attr-defined]
# Each book's trades numbered after the kept window, up to the book's last number before the
# batch, found by the (listing_id, seq) index book by book. Joined to unnest() instead, the
# generic plan a prepared statement settles on hashes the books and reads every trade of the
# window's span (the `at` bound is a parameter, so it is guessed at a third of the table): a
# batch's slowest statement after two minutes of load, 15 ms and growing, where this is 0.2 ms.
# OFFSET 0 keeps the per-book subquery from being flattened back into that join.
_NEWER_TRADES = sa.text("""
    SELECT t.listing_id, t.id, t.seq, t.price, t.at
    FROM unnest(CAST(:listing_ids AS VARCHAR[]), CAST(:after AS BIGINT[]), CAST(:upto AS BIGINT[])) AS seen(listing_id, after, upto)
    CROSS JOIN LATERAL (
        SELECT t.listing_id, t.id, t.seq, t.price, t.at FROM trades t
        WHERE t.listing_id = seen.listing_id AND t.seq > seen.after AND t.seq <= seen.upto OFFSET 0
    ) AS t
    WHERE t.at >= :since
""").bindparams(sa.bindparam("since", type_=Trade.__table__.c.at.type)).columns(*(c.expression for c in _WINDOW_TRADE))  # type: ignore[attr-defined]


async def cached_windows(
    session: AsyncSession, kept: TradeWindows, rules: ActiveRules, numbered_up_to: dict[str, int], now: datetime
) -> dict[str, PriceWindow]:
    """`price_windows`, from the windows `kept` in memory brought up to date (PostgreSQL). The
    caller holds each book's lock, and `numbered_up_to[listing_id]` is the book's last sequence
    number before its own orders: every trade numbered up to it is committed."""
    since = now - timedelta(minutes=rules.rulebook.trading.surveillance.circuit_breaker_minutes)
    seen = {listing_id: kept.watermark(listing_id, since) for listing_id in numbered_up_to}
    whole = sorted(listing_id for listing_id, watermark in seen.items() if watermark is None)
    # A book numbered no further than the window has seen has no newer trade to read: the order
    # desk adds its own batches' trades once they commit, so a book only it trades on is read
    # when its window is first made.
    newer = sorted(listing_id for listing_id, watermark in seen.items() if watermark is not None and watermark < numbered_up_to[listing_id])
    trades: dict[str, list[NewTrade]] = defaultdict(list)
    if whole:
        for listing_id, trade_id, seq, price, at in (await session.execute(_WHOLE_WINDOWS, {"listing_ids": whole, "since": since})).all():
            trades[listing_id].append((trade_id, int(seq), int(price), at))
    if newer:
        parameters = {"listing_ids": newer, "after": [seen[listing_id] for listing_id in newer],
                      "upto": [numbered_up_to[listing_id] for listing_id in newer], "since": since}
        for listing_id, trade_id, seq, price, at in (await session.execute(_NEWER_TRADES, parameters)).all():
            trades[listing_id].append((trade_id, int(seq), int(price), at))
    for listing_id in whole:
        kept.reset(listing_id, since, numbered_up_to[listing_id], trades[listing_id])
    for listing_id in newer:
        kept.add(listing_id, numbered_up_to[listing_id], trades[listing_id])
    return {listing_id: kept.window(listing_id, since) for listing_id in numbered_up_to}


def breaker_reason(rules: ActiveRules, window: PriceWindow) -> str | None:
    """Why the book must halt, when its trades within the window moved the price too far."""
    watch = rules.rulebook.trading.surveillance
    first = window.first
    if first is None or window.count < 2:
        return None
    worst = window.high if window.high - first >= first - window.low else window.low
    move = abs(worst - first) * 10_000 // first
    if move < watch.circuit_breaker_bps:
        return None
    return (f"trading.surveillance.circuit_breaker_bps: the price moved {move} bps ({first} → {worst} fen) within "
            f"{watch.circuit_breaker_minutes} minutes; the limit is {watch.circuit_breaker_bps}")


def halt(book: Book, reason: str, now: datetime) -> None:
    book.status, book.halted_reason, book.updated_at = "halted", reason, now


async def circuit_breaker(session: AsyncSession, rules: ActiveRules, book: Book, now: datetime) -> str | None:
    """Halt the book when its trades within the window moved the price too far; returns why."""
    reason = breaker_reason(rules, await price_window(session, rules, book.listing_id, now))
    if reason is not None:
        halt(book, reason, now)
        session.add(book)
    return reason


async def report(session: AsyncSession, rules: ActiveRules, category: str | None, days: int | None, now: datetime) -> ConcentrationOut:
    watch = rules.rulebook.trading.surveillance
    days = days or watch.concentration_days
    since = now - timedelta(days=days)
    query = _licences(since)
    if category is not None:
        query = query.where(Listing.category == category)
    by_category: dict[str, list[tuple[str, int]]] = {}
    for cat, buyer, licences in (await session.execute(query)).all():
        by_category.setdefault(cat, []).append((buyer, int(licences)))
    categories = []
    for cat, holders in sorted(by_category.items()):
        total = sum(n for _, n in holders)
        top = sorted(holders, key=lambda h: (-h[1], h[0]))[:TOP_HOLDERS]
        categories.append(CategoryConcentration(category=cat, licences=total, limit_bps=watch.concentration_max_bps,
                                                top=[Holder(buyer_id=b, licences=n, share_bps=n * 10_000 // total) for b, n in top]))
    return ConcentrationOut(since=since, days=days, categories=categories)
