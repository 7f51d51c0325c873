"""The continuous double-auction book: worked examples, then random submit/cancel sequences checked
against a naive reference book (lists, re-sorted on every step) and against invariants."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import count
from random import Random
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.orders.matching import Book, Fill, Order, OrderRejected, OrderType, Outcome, Side, TimeInForce

_seq = count(1)


def limit(order_id: str, side: str, price: int, quantity: int, tif: str = "gtc", owner: str | None = None) -> Order:
    return Order(id=order_id, owner=owner or f"owner-{order_id}", side=Side(side), type=OrderType.limit, price=price,
                 quantity=quantity, time_in_force=TimeInForce(tif), seq=next(_seq))


def market(order_id: str, side: str, quantity: int, tif: str = "ioc", owner: str | None = None) -> Order:
    return Order(id=order_id, owner=owner or f"owner-{order_id}", side=Side(side), type=OrderType.market, price=None,
                 quantity=quantity, time_in_force=TimeInForce(tif), seq=next(_seq))


def trades(outcome: Outcome) -> list[tuple[str, int, int]]:
    """(maker id, price, quantity) per fill."""
    return [(fill.maker_id, fill.price, fill.quantity) for fill in outcome.fills]


def book_with(*orders: Order, **options: object) -> Book:
    book = Book(**options)  # type: ignore[arg-type]
    for order in orders:
        assert book.submit(order).rested
    return book


# --- examples ------------------------------------------------------------------------------------


def test_limit_order_rests_when_nothing_crosses() -> None:
    book = Book()
    outcome = book.submit(limit("a", "buy", 100, 5))
    assert outcome == Outcome(fills=[], rested=True, remaining=5, cancelled=None, cancelled_makers=[])
    assert (book.best_bid(), book.best_ask(), len(book)) == (100, None, 1)


def test_partial_fills_walk_the_levels_and_trade_at_each_makers_price() -> None:
    book = book_with(limit("s1", "sell", 101, 3), limit("s2", "sell", 100, 2), limit("s3", "sell", 103, 4))
    outcome = book.submit(limit("b", "buy", 102, 10, owner="buyer"))
    assert outcome.fills == [
        Fill("s2", "owner-s2", "b", "buyer", Side.buy, 100, 2),
        Fill("s1", "owner-s1", "b", "buyer", Side.buy, 101, 3),
    ]
    assert (outcome.rested, outcome.remaining, outcome.cancelled) == (True, 5, None)
    assert book.depth() == {"bids": [(102, 5, 1)], "asks": [(103, 4, 1)]}


def test_maker_keeps_its_remainder_after_a_partial_fill() -> None:
    book = book_with(limit("s", "sell", 100, 10))
    assert trades(book.submit(limit("b", "buy", 100, 4, tif="ioc"))) == [("s", 100, 4)]
    assert book.get("s").remaining == 6  # type: ignore[union-attr]
    assert book.depth()["asks"] == [(100, 6, 1)]


def test_aggressive_sell_trades_at_the_resting_bid() -> None:
    book = book_with(limit("b", "buy", 105, 5))
    assert trades(book.submit(limit("s", "sell", 90, 5))) == [("b", 105, 5)]


def test_time_priority_within_a_price_level() -> None:
    book = book_with(limit("first", "sell", 100, 2), limit("second", "sell", 100, 2), limit("third", "sell", 100, 2))
    assert trades(book.submit(limit("b", "buy", 100, 3))) == [("first", 100, 2), ("second", 100, 1)]
    assert [(order.id, order.remaining) for order in book.resting()] == [("second", 1), ("third", 2)]


def test_better_price_beats_earlier_time() -> None:
    book = book_with(limit("early", "buy", 99, 1), limit("late", "buy", 100, 1))
    assert trades(book.submit(limit("s", "sell", 99, 2))) == [("late", 100, 1), ("early", 99, 1)]


def test_ioc_fills_what_crosses_and_cancels_the_rest() -> None:
    book = book_with(limit("s", "sell", 100, 3), limit("far", "sell", 110, 3))
    outcome = book.submit(limit("b", "buy", 105, 5, tif="ioc"))
    assert trades(outcome) == [("s", 100, 3)]
    assert (outcome.rested, outcome.remaining, outcome.cancelled) == (False, 2, "ioc")
    assert book.get("b") is None and book.best_bid() is None


def test_ioc_that_fills_completely_is_not_cancelled() -> None:
    book = book_with(limit("s", "sell", 100, 3))
    assert book.submit(limit("b", "buy", 100, 3, tif="ioc")).cancelled is None


def test_fok_that_cannot_fill_completely_does_nothing() -> None:
    book = book_with(limit("s1", "sell", 100, 3), limit("s2", "sell", 101, 3), limit("far", "sell", 120, 50))
    before = [(order.id, order.remaining) for order in book.resting()]
    outcome = book.submit(limit("b", "buy", 101, 7, tif="fok"))
    assert outcome == Outcome(fills=[], rested=False, remaining=7, cancelled="fok", cancelled_makers=[])
    assert [(order.id, order.remaining) for order in book.resting()] == before


def test_fok_ignores_liquidity_beyond_its_limit() -> None:
    book = book_with(limit("s", "sell", 101, 10))
    assert book.submit(limit("b", "buy", 100, 5, tif="fok")).cancelled == "fok"
    assert book.submit(limit("s2", "sell", 102, 5, tif="fok")).cancelled == "fok"  # no bids at all
    assert book.depth() == {"bids": [], "asks": [(101, 10, 1)]}


def test_fok_fills_completely_across_levels() -> None:
    book = book_with(limit("s1", "sell", 100, 3), limit("s2", "sell", 101, 3))
    outcome = book.submit(limit("b", "buy", 101, 6, tif="fok"))
    assert trades(outcome) == [("s1", 100, 3), ("s2", 101, 3)]
    assert (outcome.remaining, outcome.cancelled, len(book)) == (0, None, 0)


@pytest.mark.parametrize("self_trade", ["allow", "cancel_taker", "cancel_maker"])
def test_fok_for_exactly_what_crosses_fills(self_trade: str) -> None:
    book = book_with(limit("s1", "sell", 100, 3), limit("s2", "sell", 100, 2), limit("s3", "sell", 101, 4), self_trade=self_trade)
    assert book.submit(limit("b1", "buy", 100, 6, tif="fok")).cancelled == "fok"
    assert trades(book.submit(limit("b2", "buy", 100, 5, tif="fok"))) == [("s1", 100, 3), ("s2", 100, 2)]
    assert trades(book.submit(limit("b3", "buy", 101, 4, tif="fok"))) == [("s3", 101, 4)]


def test_fok_does_not_count_cancelled_orders() -> None:
    book = book_with(limit("s1", "sell", 100, 3), limit("s2", "sell", 100, 3))
    book.cancel("s1")
    assert book.submit(limit("b", "buy", 100, 4, tif="fok")).cancelled == "fok"
    assert trades(book.submit(limit("b2", "buy", 100, 3, tif="fok"))) == [("s2", 100, 3)]


def test_market_order_sweeps_and_its_remainder_never_rests() -> None:
    book = book_with(limit("s1", "sell", 100, 2), limit("s2", "sell", 150, 2))
    outcome = book.submit(market("m", "buy", 5))
    assert trades(outcome) == [("s1", 100, 2), ("s2", 150, 2)]
    assert (outcome.rested, outcome.remaining, outcome.cancelled) == (False, 1, "market")
    assert len(book) == 0


def test_market_order_stops_at_the_band() -> None:
    book = book_with(limit("s1", "sell", 100, 2), limit("s2", "sell", 110, 2), band=(90, 110))
    book.set_band((90, 105))
    outcome = book.submit(market("m", "buy", 5))
    assert trades(outcome) == [("s1", 100, 2)]
    assert (outcome.remaining, outcome.cancelled) == (3, "band")
    assert book.best_ask() == 110  # resting orders stay when the band moves


def test_market_sell_stops_at_the_low_end_of_the_band() -> None:
    book = book_with(limit("b1", "buy", 100, 2), limit("b2", "buy", 80, 2))
    book.set_band((90, 200))
    outcome = book.submit(market("m", "sell", 3))
    assert (trades(outcome), outcome.cancelled) == ([("b1", 100, 2)], "band")


def test_market_fok_is_all_or_nothing_within_the_band() -> None:
    book = book_with(limit("s1", "sell", 100, 2), limit("s2", "sell", 120, 2), band=(50, 150))
    assert book.submit(market("m1", "buy", 5, tif="fok")).cancelled == "fok"
    assert len(book) == 2
    book.set_band((50, 110))
    assert book.submit(market("m2", "buy", 3, tif="fok")).cancelled == "fok"
    assert trades(book.submit(market("m3", "buy", 2, tif="fok"))) == [("s1", 100, 2)]


def test_limit_orders_outside_the_band_are_rejected() -> None:
    book = Book(band=(90, 110))
    for price in (89, 111):
        with pytest.raises(OrderRejected) as raised:
            book.submit(limit(f"x{price}", "buy", price, 1))
        assert raised.value.reason == "band"
        assert isinstance(raised.value, ValueError)
    assert book.submit(limit("edge-low", "buy", 90, 1)).rested
    assert book.submit(limit("edge-high", "sell", 110, 1)).rested
    book.set_band(None)
    assert book.submit(limit("free", "sell", 500, 1)).rested


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (Order("q0", "o", Side.buy, OrderType.limit, 100, 0, TimeInForce.gtc, 10**9), "quantity"),
        (Order("qb", "o", Side.buy, OrderType.limit, 100, True, TimeInForce.gtc, 10**9), "quantity"),  # type: ignore[arg-type]
        (Order("p0", "o", Side.buy, OrderType.limit, 0, 1, TimeInForce.gtc, 10**9), "price"),
        (Order("pf", "o", Side.buy, OrderType.limit, 100.0, 1, TimeInForce.gtc, 10**9), "price"),  # type: ignore[arg-type]
        (Order("pn", "o", Side.buy, OrderType.limit, None, 1, TimeInForce.gtc, 10**9), "price"),
        (Order("mp", "o", Side.buy, OrderType.market, 100, 1, TimeInForce.ioc, 10**9), "price"),
        (Order("mg", "o", Side.buy, OrderType.market, None, 1, TimeInForce.gtc, 10**9), "time_in_force"),
        (Order("sd", "o", "hold", OrderType.limit, 100, 1, TimeInForce.gtc, 10**9), "side"),  # type: ignore[arg-type]
        (Order("tp", "o", Side.buy, "stop", 100, 1, TimeInForce.gtc, 10**9), "type"),  # type: ignore[arg-type]
        (Order("tf", "o", Side.buy, OrderType.limit, 100, 1, "day", 10**9), "time_in_force"),  # type: ignore[arg-type]
    ],
    ids=lambda value: value.id if isinstance(value, Order) else value,
)
def test_invalid_orders_are_rejected_before_touching_the_book(order: Order, reason: str) -> None:
    book = book_with(limit("s", "sell", 100, 5))
    with pytest.raises(OrderRejected) as raised:
        book.submit(order)
    assert raised.value.reason == reason
    assert [(o.id, o.remaining) for o in book.resting()] == [("s", 5)]


def test_seq_must_increase_and_ids_must_not_clash_with_resting_orders() -> None:
    book = Book()
    book.submit(Order("a", "o", Side.buy, OrderType.limit, 100, 1, TimeInForce.gtc, 5))
    with pytest.raises(OrderRejected) as raised:
        book.submit(Order("b", "o", Side.buy, OrderType.limit, 100, 1, TimeInForce.gtc, 5))
    assert raised.value.reason == "seq"
    with pytest.raises(OrderRejected) as raised:
        book.submit(Order("a", "o", Side.buy, OrderType.limit, 100, 1, TimeInForce.gtc, 6))
    assert raised.value.reason == "duplicate_id"
    assert book.submit(Order("b", "o", Side.buy, OrderType.limit, 100, 1, TimeInForce.gtc, 6)).rested


def test_plain_strings_work_for_the_enums() -> None:
    book = Book()
    book.submit(Order("s", "o", "sell", "limit", 100, 2, "gtc", 1))  # type: ignore[arg-type]
    assert trades(book.submit(Order("b", "p", "buy", "market", None, 2, "ioc", 2))) == [("s", 100, 2)]  # type: ignore[arg-type]


def test_self_trade_cancel_taker_keeps_earlier_fills_and_cancels_the_rest() -> None:
    book = book_with(limit("other", "sell", 100, 2, owner="bob"), limit("mine", "sell", 101, 2, owner="ann"),
                     limit("behind", "sell", 102, 2, owner="cat"))
    outcome = book.submit(limit("b", "buy", 102, 6, owner="ann"))
    assert trades(outcome) == [("other", 100, 2)]
    assert (outcome.rested, outcome.remaining, outcome.cancelled, outcome.cancelled_makers) == (False, 4, "self_trade", [])
    assert [order.id for order in book.resting()] == ["mine", "behind"]


def test_self_trade_cancel_maker_removes_own_orders_and_keeps_matching() -> None:
    book = book_with(limit("mine1", "sell", 100, 2, owner="ann"), limit("other", "sell", 100, 2, owner="bob"),
                     limit("mine2", "sell", 101, 2, owner="ann"), limit("behind", "sell", 102, 5, owner="cat"),
                     self_trade="cancel_maker")
    outcome = book.submit(limit("b", "buy", 102, 4, owner="ann"))
    assert trades(outcome) == [("other", 100, 2), ("behind", 102, 2)]
    assert outcome.cancelled_makers == ["mine1", "mine2"]
    assert (outcome.remaining, outcome.cancelled) == (0, None)
    assert [(order.id, order.remaining) for order in book.resting()] == [("behind", 3)]
    assert book.depth() == {"bids": [], "asks": [(102, 3, 1)]}


def test_self_trade_cancel_maker_inside_a_level_keeps_its_totals() -> None:
    book = book_with(limit("mine", "sell", 100, 2, owner="ann"), limit("other", "sell", 100, 2, owner="bob"),
                     limit("tail", "sell", 100, 3, owner="dan"), self_trade="cancel_maker")
    outcome = book.submit(limit("b", "buy", 100, 3, owner="ann", tif="ioc"))
    assert (trades(outcome), outcome.cancelled_makers) == ([("other", 100, 2), ("tail", 100, 1)], ["mine"])
    assert book.depth()["asks"] == [(100, 2, 1)]


def test_self_trade_allow_trades_with_own_orders() -> None:
    book = book_with(limit("mine", "sell", 100, 2, owner="ann"), self_trade="allow")
    assert book.submit(limit("b", "buy", 100, 2, owner="ann")).fills == [Fill("mine", "ann", "b", "ann", Side.buy, 100, 2)]


def test_fok_does_not_fill_when_self_trade_would_block_it() -> None:
    book = book_with(limit("mine", "sell", 100, 2, owner="ann"), limit("other", "sell", 101, 5, owner="bob"))
    assert book.submit(limit("b", "buy", 101, 3, owner="ann", tif="fok")).cancelled == "fok"
    assert len(book) == 2


def test_fok_under_cancel_maker_counts_only_other_owners() -> None:
    book = book_with(limit("mine", "sell", 100, 2, owner="ann"), limit("other", "sell", 101, 3, owner="bob"),
                     self_trade="cancel_maker")
    assert book.submit(limit("b1", "buy", 101, 4, owner="ann", tif="fok")).cancelled == "fok"
    assert len(book) == 2  # a failed FOK leaves even its own owner's orders alone
    outcome = book.submit(limit("b2", "buy", 101, 3, owner="ann", tif="fok"))
    assert (trades(outcome), outcome.cancelled_makers) == ([("other", 101, 3)], ["mine"])


def test_cancel_returns_the_order_with_its_unfilled_quantity() -> None:
    book = book_with(limit("s", "sell", 100, 5), limit("t", "sell", 100, 5))
    book.submit(limit("b", "buy", 100, 2, tif="ioc"))
    cancelled = book.cancel("s")
    assert cancelled is not None and (cancelled.id, cancelled.remaining) == ("s", 3)
    assert book.cancel("s") is None and book.cancel("unknown") is None and book.get("s") is None
    assert book.depth()["asks"] == [(100, 5, 1)]
    assert trades(book.submit(limit("b2", "buy", 100, 5))) == [("t", 100, 5)]
    assert book.cancel("t") is None  # filled, so no longer resting


def test_cancelled_levels_disappear_from_best_prices_and_depth() -> None:
    book = book_with(limit("b1", "buy", 100, 1), limit("b2", "buy", 99, 1), limit("s1", "sell", 105, 1))
    book.cancel("b1")
    assert (book.best_bid(), book.best_ask()) == (99, 105)
    book.cancel("b2")
    assert book.best_bid() is None and book.depth()["bids"] == []
    assert book.submit(limit("b3", "buy", 100, 1)).rested  # the emptied price level is reused
    assert book.depth() == {"bids": [(100, 1, 1)], "asks": [(105, 1, 1)]}


def test_many_cancels_behind_a_long_lived_order_are_compacted_away() -> None:
    book = book_with(limit("front", "sell", 100, 1), *(limit(f"s{n}", "sell", 100, 1) for n in range(200)))
    for n in range(199):
        book.cancel(f"s{n}")
    assert book.depth()["asks"] == [(100, 2, 2)]
    assert trades(book.submit(limit("b", "buy", 100, 3))) == [("front", 100, 1), ("s199", 100, 1)]


def test_depth_aggregates_levels_best_first_and_honours_the_limit() -> None:
    book = book_with(limit("b1", "buy", 98, 1), limit("b2", "buy", 99, 2), limit("b3", "buy", 99, 3),
                     limit("s1", "sell", 103, 4), limit("s2", "sell", 101, 1), limit("s3", "sell", 102, 7))
    assert book.depth() == {"bids": [(99, 5, 2), (98, 1, 1)], "asks": [(101, 1, 1), (102, 7, 1), (103, 4, 1)]}
    assert book.depth(levels=1) == {"bids": [(99, 5, 2)], "asks": [(101, 1, 1)]}
    assert [order.id for order in book.resting()] == ["b2", "b3", "b1", "s2", "s3", "s1"]


def test_a_book_rebuilt_from_resting_orders_matches_the_same_way() -> None:
    book = book_with(limit("b1", "buy", 99, 4), limit("s1", "sell", 101, 4), limit("b2", "buy", 99, 4))
    book.submit(limit("s2", "sell", 99, 5, tif="ioc"))
    rebuilt = Book()
    for order in sorted(book.resting(), key=lambda order: order.seq):
        copy = Order(order.id, order.owner, order.side, order.type, order.price, order.quantity, order.time_in_force, order.seq,
                     remaining=order.remaining)
        assert rebuilt.submit(copy).rested
    assert rebuilt.depth() == book.depth() == {"bids": [(99, 3, 1)], "asks": [(101, 4, 1)]}


def test_book_options_are_checked() -> None:
    with pytest.raises(ValueError):
        Book(self_trade="sometimes")
    with pytest.raises(ValueError):
        Book(band=(110, 90))
    with pytest.raises(ValueError):
        Book().set_band((0, 10))


# --- the naive reference book --------------------------------------------------------------------


@dataclass
class RefOrder:
    id: str
    owner: str
    side: str
    price: int
    seq: int
    remaining: int


@dataclass
class ReferenceBook:
    """Everything the simplest way: one list of resting orders, filtered and sorted on every step."""

    band: tuple[int, int] | None
    self_trade: str
    resting: list[RefOrder] = field(default_factory=list)

    def queue(self, side: str, limit_price: int | None) -> list[RefOrder]:
        """Opposite orders a `side` taker with `limit_price` (None: any) crosses, in priority order."""
        if side == "buy":
            crossing = [o for o in self.resting if o.side == "sell" and (limit_price is None or o.price <= limit_price)]
            return sorted(crossing, key=lambda o: (o.price, o.seq))
        crossing = [o for o in self.resting if o.side == "buy" and (limit_price is None or o.price >= limit_price)]
        return sorted(crossing, key=lambda o: (-o.price, o.seq))

    def submit(self, order_id: str, owner: str, side: str, kind: str, price: int | None, quantity: int, tif: str, seq: int) -> tuple:
        if kind == "limit" and self.band is not None and not self.band[0] <= price <= self.band[1]:  # type: ignore[operator]
            return ("rejected", "band")
        if kind == "limit":
            limit_price = price
        elif self.band is None:
            limit_price = None
        else:
            limit_price = self.band[1] if side == "buy" else self.band[0]

        if tif == "fok":
            available = 0
            for maker in self.queue(side, limit_price):
                if maker.owner == owner and self.self_trade == "cancel_taker":
                    break
                if maker.owner == owner and self.self_trade == "cancel_maker":
                    continue
                available += maker.remaining
            if available < quantity:
                return ([], False, quantity, "fok", [])

        fills: list[tuple] = []
        cancelled_makers: list[str] = []
        remaining = quantity
        while remaining:
            queue = self.queue(side, limit_price)
            if not queue:
                break
            maker = queue[0]
            if maker.owner == owner and self.self_trade == "cancel_taker":
                return (fills, False, remaining, "self_trade", cancelled_makers)
            if maker.owner == owner and self.self_trade == "cancel_maker":
                self.resting.remove(maker)
                cancelled_makers.append(maker.id)
                continue
            traded = min(remaining, maker.remaining)
            fills.append((maker.id, maker.owner, order_id, owner, side, maker.price, traded))
            maker.remaining -= traded
            remaining -= traded
            if not maker.remaining:
                self.resting.remove(maker)
        if not remaining:
            return (fills, False, 0, None, cancelled_makers)
        if kind == "market":
            opposite_left = any(o.side != side for o in self.resting)
            return (fills, False, remaining, "band" if opposite_left else "market", cancelled_makers)
        if tif == "ioc":
            return (fills, False, remaining, "ioc", cancelled_makers)
        self.resting.append(RefOrder(order_id, owner, side, price, seq, remaining))  # type: ignore[arg-type]
        return (fills, True, remaining, None, cancelled_makers)

    def cancel(self, order_id: str) -> tuple[str, int] | None:
        for order in self.resting:
            if order.id == order_id:
                self.resting.remove(order)
                return (order.id, order.remaining)
        return None

    def snapshot(self) -> list[tuple[str, int]]:
        bids = sorted((o for o in self.resting if o.side == "buy"), key=lambda o: (-o.price, o.seq))
        asks = sorted((o for o in self.resting if o.side == "sell"), key=lambda o: (o.price, o.seq))
        return [(o.id, o.remaining) for o in bids + asks]


# --- random sequences ----------------------------------------------------------------------------

# (action, side, type, price, quantity, time in force, owner); a "cancel" step reuses quantity - 1
# to pick which recent order it cancels.
_step = st.tuples(
    st.sampled_from(["submit", "submit", "submit", "cancel"]),
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(["limit", "limit", "limit", "limit", "market"]),
    st.integers(min_value=95, max_value=105),
    st.integers(min_value=1, max_value=8),
    st.sampled_from(["gtc", "gtc", "gtc", "ioc", "fok"]),
    st.sampled_from(["ann", "bob", "cat"]),
)
scenarios = st.tuples(
    st.sampled_from([None, (97, 103)]),
    st.sampled_from(["cancel_taker", "cancel_maker", "allow"]),
    st.lists(_step, min_size=20, max_size=80),
)


def as_order(step: tuple, index: int) -> Order:
    _, side, kind, price, quantity, tif, owner = step
    if kind == "market":
        return Order(f"o{index}", owner, Side(side), OrderType.market, None, quantity, TimeInForce("ioc" if tif == "gtc" else tif), index)
    return Order(f"o{index}", owner, Side(side), OrderType.limit, price, quantity, TimeInForce(tif), index)


def cancel_target(step: tuple, submitted: list[str]) -> str:
    """One of the latest submitted orders (likely still resting), or one never submitted."""
    back = step[4] - 1
    return submitted[-1 - back] if back < len(submitted) else "never-submitted"


def record(outcome: Outcome) -> tuple:
    return ([tuple(fill) for fill in outcome.fills], outcome.rested, outcome.remaining, outcome.cancelled, outcome.cancelled_makers)


class Resting(NamedTuple):
    """A resting order as it was at one moment (the book goes on changing Order objects)."""

    id: str
    owner: str
    side: Side
    price: int
    seq: int
    remaining: int


def snapshot(book: Book) -> list[Resting]:
    return [Resting(o.id, o.owner, o.side, o.price, o.seq, o.remaining) for o in book.resting()]  # type: ignore[arg-type]


@dataclass
class Run:
    """What happened when a scenario ran on a Book: per step, the order (or cancelled id), the
    result (Outcome, rejection reason, or what cancel returned), and the resting orders just
    before and after."""

    book: Book
    steps: list[tuple] = field(default_factory=list)


def run(band: tuple[int, int] | None, self_trade: str, script: list[tuple]) -> Run:
    book = Book(band=band, self_trade=self_trade)
    result = Run(book)
    submitted: list[str] = []
    for index, step in enumerate(script, start=1):
        before = snapshot(book)
        if step[0] == "submit":
            order = as_order(step, index)
            try:
                outcome: object = book.submit(order)
            except OrderRejected as rejected:
                outcome = rejected.reason
            submitted.append(order.id)
            result.steps.append((order, outcome, before, snapshot(book)))
        else:
            order_id = cancel_target(step, submitted)
            result.steps.append((order_id, book.cancel(order_id), before, snapshot(book)))
    return result


def fast(test):  # type: ignore[no-untyped-def]
    return settings(max_examples=120, deadline=None, database=None)(given(scenarios)(test))


@fast
def test_book_agrees_with_the_naive_reference_on_every_step(scenario: tuple) -> None:
    band, self_trade, script = scenario
    book = Book(band=band, self_trade=self_trade)
    reference = ReferenceBook(band, self_trade)
    submitted: list[str] = []
    for index, step in enumerate(script, start=1):
        if step[0] == "submit":
            order = as_order(step, index)
            try:
                got: tuple = record(book.submit(order))
            except OrderRejected as rejected:
                got = ("rejected", rejected.reason)
            expected = reference.submit(order.id, order.owner, str(order.side), str(order.type), order.price, order.quantity,
                                        str(order.time_in_force), order.seq)
            submitted.append(order.id)
        else:
            order_id = cancel_target(step, submitted)
            cancelled = book.cancel(order_id)
            got = None if cancelled is None else (cancelled.id, cancelled.remaining)  # type: ignore[assignment]
            expected = reference.cancel(order_id)  # type: ignore[assignment]
        assert got == expected, f"step {index}: {step}"
        assert [(order.id, order.remaining) for order in book.resting()] == reference.snapshot()
        assert len(book) == len(reference.resting)
        levels: dict[tuple[str, int], list[int]] = defaultdict(list)
        for resting in reference.resting:
            levels[(resting.side, resting.price)].append(resting.remaining)
        bids = sorted(((p, sum(q), len(q)) for (s, p), q in levels.items() if s == "buy"), reverse=True)
        asks = sorted((p, sum(q), len(q)) for (s, p), q in levels.items() if s == "sell")
        assert book.depth(levels=100) == {"bids": bids, "asks": asks}


@pytest.mark.parametrize("self_trade", ["cancel_taker", "cancel_maker", "allow"])
@pytest.mark.parametrize("seed", [1, 2])
def test_long_random_runs_on_crowded_levels_agree_with_the_reference(seed: int, self_trade: str) -> None:
    # Few prices, long queues, then a burst of cancels: queues full of cancelled slots (and
    # their compaction), which the short hypothesis sequences never build.
    rng = Random(seed)
    book = Book(band=(98, 102), self_trade=self_trade)
    reference = ReferenceBook((98, 102), self_trade)
    submitted: list[str] = []
    seq = 0
    for step in range(2600):
        if submitted and rng.random() < (0.9 if 1200 <= step < 2000 else 0.2):
            order_id = rng.choice(submitted)
            cancelled = book.cancel(order_id)
            assert (None if cancelled is None else (cancelled.id, cancelled.remaining)) == reference.cancel(order_id)
            continue
        seq += 1
        side = rng.choice(["buy", "sell"])
        kind = "market" if rng.random() < 0.05 else "limit"
        # Buyers mostly bid low and sellers ask high, so the book fills up between the trades.
        price = rng.choice([98, 99, 99, 100]) if side == "buy" else rng.choice([100, 101, 101, 102])
        tif = rng.choice(["ioc", "fok"]) if kind == "market" else rng.choice(["gtc"] * 8 + ["ioc", "fok"])
        order = Order(f"o{seq}", rng.choice(["ann", "bob", "cat", "dan"]), Side(side), OrderType(kind),
                      price if kind == "limit" else None, rng.randint(1, 6), TimeInForce(tif), seq)
        submitted.append(order.id)
        expected = reference.submit(order.id, order.owner, side, kind, order.price, order.quantity, tif, seq)
        assert record(book.submit(order)) == expected, seq
        if step % 100 == 0:
            assert [(order.id, order.remaining) for order in book.resting()] == reference.snapshot()
    assert [(order.id, order.remaining) for order in book.resting()] == reference.snapshot()
    assert len(book) > 100


@fast
def test_fills_follow_price_time_priority(scenario: tuple) -> None:
    # Priority is worked out here from each resting order's price and seq, not taken from the book.
    for order, outcome, before, _after in run(*scenario).steps:
        if not isinstance(outcome, Outcome):
            continue
        opposite = [o for o in before if o.side != order.side]
        if order.side == Side.buy:
            opposite.sort(key=lambda o: (o.price, o.seq))
        else:
            opposite.sort(key=lambda o: (-o.price, o.seq))
        touched = list(dict.fromkeys([fill.maker_id for fill in outcome.fills] + outcome.cancelled_makers))
        assert set(touched) == {o.id for o in opposite[: len(touched)]}
        ranks = {o.id: rank for rank, o in enumerate(opposite)}
        filled_ranks = [ranks[fill.maker_id] for fill in outcome.fills]
        assert filled_ranks == sorted(filled_ranks)
        prices = {o.id: o.price for o in opposite}
        assert all(fill.price == prices[fill.maker_id] for fill in outcome.fills)


@fast
def test_quantity_is_conserved_for_every_order(scenario: tuple) -> None:
    result = run(*scenario)
    orders: dict[str, Order] = {}
    filled: dict[str, int] = defaultdict(int)
    cancelled: dict[str, int] = defaultdict(int)
    for order, outcome, _before, _after in result.steps:
        if isinstance(order, Order):
            if not isinstance(outcome, Outcome):
                continue
            orders[order.id] = order
            for fill in outcome.fills:
                filled[fill.taker_id] += fill.quantity
                filled[fill.maker_id] += fill.quantity
            for maker_id in outcome.cancelled_makers:
                cancelled[maker_id] += orders[maker_id].remaining
            if not outcome.rested:
                cancelled[order.id] += outcome.remaining
            assert outcome.remaining == order.quantity - sum(fill.quantity for fill in outcome.fills)
        elif outcome is not None:
            cancelled[order] += outcome.remaining
    for order_id, order in orders.items():
        resting = result.book.get(order_id)
        on_book = resting.remaining if resting is not None else 0
        assert order.quantity == filled[order_id] + on_book + cancelled[order_id], order_id


@fast
def test_book_is_never_crossed_at_rest(scenario: tuple) -> None:
    result = run(*scenario)
    for _order, _outcome, _before, after in result.steps:
        bids = [o.price for o in after if o.side == Side.buy]
        asks = [o.price for o in after if o.side == Side.sell]
        if bids and asks:
            assert max(bids) < min(asks)
    bid, ask = result.book.best_bid(), result.book.best_ask()
    if bid is not None and ask is not None:
        assert bid < ask


@fast
def test_fok_ioc_and_market_orders_keep_their_promises(scenario: tuple) -> None:
    for order, outcome, before, after in run(*scenario).steps:
        if not isinstance(outcome, Outcome):
            continue
        filled = sum(fill.quantity for fill in outcome.fills)
        if order.time_in_force == TimeInForce.fok:
            assert filled in (0, order.quantity)
            if not filled:
                assert outcome.cancelled == "fok" and outcome.cancelled_makers == []
                assert after == before
        if order.time_in_force != TimeInForce.gtc or order.type == OrderType.market:
            assert not outcome.rested and order.id not in {o.id for o in after}
        if outcome.remaining and not outcome.rested:
            assert outcome.cancelled is not None
        if outcome.rested or not outcome.remaining:
            assert outcome.cancelled is None


@fast
def test_fills_are_never_worse_than_the_takers_limit_or_the_band(scenario: tuple) -> None:
    band = scenario[0]
    for order, outcome, _before, _after in run(*scenario).steps:
        if not isinstance(outcome, Outcome):
            continue
        for fill in outcome.fills:
            assert fill.side == order.side and fill.taker_id == order.id
            if order.type == OrderType.limit:
                assert fill.price <= order.price if order.side == Side.buy else fill.price >= order.price  # type: ignore[operator]
            elif band is not None:
                assert fill.price <= band[1] if order.side == Side.buy else fill.price >= band[0]
            if scenario[1] != "allow":
                assert fill.maker_owner != fill.taker_owner


@fast
def test_replaying_the_same_calls_gives_the_same_outcomes(scenario: tuple) -> None:
    def replay() -> list[tuple]:
        return [(order if isinstance(order, str) else (order.id, order.remaining),
                 outcome if not isinstance(outcome, Order) else (outcome.id, outcome.remaining),
                 after)
                for order, outcome, _before, after in run(*scenario).steps]

    assert replay() == replay()
