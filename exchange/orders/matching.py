"""Continuous double-auction matching for quota listings: one price-time priority book per listing. Pure.

Units of data ("10,000 API calls") trade at integer fen per unit. An incoming order (the taker)
matches the best-priced resting orders (makers) on the other side, earliest `seq` first within
a price, and every trade happens at the maker's price. What is left of the taker then rests
(limit, gtc) or is cancelled (ioc, fok, market, self-trade); the book is never crossed at rest.

- gtc: fill what crosses, rest the remainder. ioc: fill what crosses, cancel the rest.
- fok: fill the whole quantity at once or do nothing at all (no fills, no side effects).
- market: no price; ioc or fok only; bounded by the book's price band when it has one.
- self-trade prevention, when the next maker belongs to the taker's owner: "cancel_taker" stops
  and cancels the taker's remainder (earlier fills stand), "cancel_maker" removes that maker and
  goes on matching, "allow" trades with it.

The book keeps, per side, a heap of price keys and a dict key -> level (a deque of orders in
arrival order). Cancels are O(1): the order leaves the id index at once and its deque slot is
dropped lazily: when it reaches the front, or when a level's dead slots outnumber its live ones.
`submit` takes ownership of the order object and updates its `remaining`; submit a new Order
rather than re-submitting one the book has held. Same calls in the same order, same outcomes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from heapq import heappop, heappush, nsmallest
from typing import NamedTuple


class Side(StrEnum):
    buy = "buy"
    sell = "sell"


class OrderType(StrEnum):
    limit = "limit"
    market = "market"


class TimeInForce(StrEnum):
    gtc = "gtc"
    ioc = "ioc"
    fok = "fok"


CANCEL_TAKER = "cancel_taker"
CANCEL_MAKER = "cancel_maker"
ALLOW = "allow"
SELF_TRADE_MODES = frozenset({CANCEL_TAKER, CANCEL_MAKER, ALLOW})

# Module-level aliases: enum attribute lookups are measurably slow on the hot path.
_BUY, _SELL = Side.buy, Side.sell
_LIMIT, _MARKET = OrderType.limit, OrderType.market
_GTC, _IOC, _FOK = TimeInForce.gtc, TimeInForce.ioc, TimeInForce.fok
_NO_LIMIT = 1 << 62  # a key beyond any price: market orders without a band cross everything


class OrderRejected(ValueError):
    """The book refused an order before touching anything. `reason` is stable: "side", "type",
    "time_in_force", "quantity", "price", "band", "seq", "duplicate_id"."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(slots=True)
class Order:
    id: str
    owner: str
    """Participant id; self-trade prevention compares it."""
    side: Side
    type: OrderType
    price: int | None
    """Fen per unit; None for market orders."""
    quantity: int
    time_in_force: TimeInForce
    seq: int
    """Arrival number given by the caller, strictly increasing per book: time priority."""
    remaining: int = None  # type: ignore[assignment]  # set to quantity by __post_init__
    """Units not yet filled (nor cancelled); the book lowers it as the order fills."""

    def __post_init__(self) -> None:
        if self.remaining is None:
            self.remaining = self.quantity


class Fill(NamedTuple):
    maker_id: str
    maker_owner: str
    taker_id: str
    taker_owner: str
    side: Side
    """The taker's side."""
    price: int
    """The maker's price, fen per unit."""
    quantity: int


_new_fill = tuple.__new__  # skips NamedTuple's Python-level __new__: ~60 ns less per fill


@dataclass(slots=True)
class Outcome:
    fills: list[Fill]
    rested: bool
    """The taker's remainder now rests on the book."""
    remaining: int
    """Taker units not filled."""
    cancelled: str | None
    """Why the remainder did not rest: "ioc", "fok", "market", "band", "self_trade"; None when
    the taker filled completely or rested."""
    cancelled_makers: list[str]
    """Resting orders removed by self-trade prevention ("cancel_maker"), in the order met."""


class _Level:
    """The orders resting at one price in arrival order. `orders` may still hold cancelled
    orders (dropped lazily); `quantity` and `count` cover live orders only."""

    __slots__ = ("price", "orders", "quantity", "count")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[Order] = deque()
        self.quantity = 0
        self.count = 0


class _Half:
    """One side of a book. Keys are prices for asks and negated prices for bids, so the smallest
    key is always the best price and one matching loop serves both sides. `heap` holds each key
    of `levels` exactly once; a level emptied by cancels stays until it reaches the top."""

    __slots__ = ("heap", "levels")

    def __init__(self) -> None:
        self.heap: list[int] = []
        self.levels: dict[int, _Level] = {}


def _check_band(band: tuple[int, int] | None) -> tuple[int, int] | None:
    if band is None:
        return None
    low, high = band
    if type(low) is not int or type(high) is not int or not 0 < low <= high:
        raise ValueError(f"band must be (low, high) integer fen with 0 < low <= high, not {band!r}")
    return (low, high)


class Book:
    """The order book of one listing."""

    __slots__ = ("_band", "_self_trade", "_bids", "_asks", "_orders", "_last_seq")

    def __init__(self, band: tuple[int, int] | None = None, self_trade: str = CANCEL_TAKER) -> None:
        if self_trade not in SELF_TRADE_MODES:
            raise ValueError(f"self_trade must be one of {sorted(SELF_TRADE_MODES)}, not {self_trade!r}")
        self._band = _check_band(band)
        self._self_trade = self_trade
        self._bids = _Half()
        self._asks = _Half()
        self._orders: dict[str, Order] = {}
        """Resting orders by id: the liveness test for deque slots, and O(1) cancels."""
        self._last_seq: int | None = None

    @property
    def band(self) -> tuple[int, int] | None:
        return self._band

    @property
    def self_trade(self) -> str:
        return self._self_trade

    def set_band(self, band: tuple[int, int] | None) -> None:
        """Applies to orders submitted from now on; resting orders stay where they are."""
        self._band = _check_band(band)

    def submit(self, order: Order) -> Outcome:
        """Match `order` and rest or cancel what is left. Only `order.remaining` trades, so a
        partly filled order from `resting()` can be submitted again to rebuild a book (in seq
        order). Raises OrderRejected, with nothing changed, for an invalid order."""
        side = order.side
        if side == _BUY:
            own, opposite = self._bids, self._asks
        elif side == _SELL:
            own, opposite = self._asks, self._bids
        else:
            raise OrderRejected("side", f"order {order.id}: side must be buy or sell, not {side!r}")
        quantity = order.quantity
        remaining = order.remaining
        if type(quantity) is not int or quantity <= 0:
            raise OrderRejected("quantity", f"order {order.id}: quantity must be a positive integer, not {quantity!r}")
        if type(remaining) is not int or not 0 < remaining <= quantity:
            raise OrderRejected("quantity", f"order {order.id}: remaining must be in 1..quantity, not {remaining!r}")
        tif = order.time_in_force
        if tif != _GTC and tif != _IOC and tif != _FOK:
            raise OrderRejected("time_in_force", f"order {order.id}: time in force must be gtc, ioc or fok, not {tif!r}")
        price = order.price
        band = self._band
        kind = order.type
        if kind == _LIMIT:
            if type(price) is not int or price <= 0:
                raise OrderRejected("price", f"order {order.id}: a limit price must be a positive integer of fen, not {price!r}")
            if band is not None and not band[0] <= price <= band[1]:
                raise OrderRejected("band", f"order {order.id}: price {price} is outside the band {band[0]}..{band[1]}")
            # A maker crosses when its key is <= limit_key: the ask price for a buy, minus the bid price for a sell.
            limit_key = price if side == _BUY else -price
        elif kind == _MARKET:
            if price is not None:
                raise OrderRejected("price", f"order {order.id}: a market order has no price")
            if tif == _GTC:
                raise OrderRejected("time_in_force", f"order {order.id}: a market order is ioc or fok, never gtc")
            if band is None:
                limit_key = _NO_LIMIT
            else:
                limit_key = band[1] if side == _BUY else -band[0]
        else:
            raise OrderRejected("type", f"order {order.id}: type must be limit or market, not {kind!r}")
        seq = order.seq
        last_seq = self._last_seq
        if type(seq) is not int or (last_seq is not None and seq <= last_seq):
            raise OrderRejected("seq", f"order {order.id}: seq {seq!r} must be an integer above {last_seq}")
        orders = self._orders
        order_id = order.id
        if order_id in orders:
            raise OrderRejected("duplicate_id", f"order {order_id} is already resting")
        self._last_seq = seq

        owner = order.owner
        heap = opposite.heap
        levels = opposite.levels
        self_trade = self._self_trade
        if tif == _FOK and not self._fillable(opposite, limit_key, remaining, owner):
            return Outcome([], False, remaining, "fok", [])

        prevent = self_trade != ALLOW
        fills: list[Fill] = []
        cancelled_makers: list[str] = []
        self_trade_stop = False
        while remaining and heap:
            key = heap[0]
            level = levels[key]
            if not level.count:
                heappop(heap)
                del levels[key]
                continue
            if key > limit_key:
                break
            queue = level.orders
            while True:
                maker = queue[0]
                maker_id = maker.id
                if orders.get(maker_id) is not maker:  # cancelled while resting
                    queue.popleft()
                    continue
                if prevent and maker.owner == owner:
                    if self_trade == CANCEL_TAKER:
                        self_trade_stop = True
                        break
                    queue.popleft()
                    del orders[maker_id]
                    level.count -= 1
                    level.quantity -= maker.remaining
                    cancelled_makers.append(maker_id)
                    if not level.count:
                        break
                    continue
                available = maker.remaining
                if available <= remaining:
                    traded = available
                    maker.remaining = 0
                    queue.popleft()
                    del orders[maker_id]
                    level.count -= 1
                else:
                    traded = remaining
                    maker.remaining = available - remaining
                level.quantity -= traded
                remaining -= traded
                fills.append(_new_fill(Fill, (maker_id, maker.owner, order_id, owner, side, maker.price, traded)))
                if not remaining or not level.count:
                    break
            if not level.count:
                heappop(heap)
                del levels[key]
            if self_trade_stop:
                break

        order.remaining = remaining
        if not remaining:
            return Outcome(fills, False, 0, None, cancelled_makers)
        if self_trade_stop:
            return Outcome(fills, False, remaining, "self_trade", cancelled_makers)
        if kind == _MARKET:
            # The loop stops with opposite orders left only when they lie beyond the band.
            return Outcome(fills, False, remaining, "band" if heap else "market", cancelled_makers)
        if tif == _IOC:
            return Outcome(fills, False, remaining, "ioc", cancelled_makers)

        own_levels = own.levels
        own_key = -limit_key
        level = own_levels.get(own_key)
        if level is None:
            level = own_levels[own_key] = _Level(price)  # type: ignore[arg-type]  # limit orders have a price
            heappush(own.heap, own_key)
        level.orders.append(order)
        level.quantity += remaining
        level.count += 1
        orders[order_id] = order
        return Outcome(fills, True, remaining, None, cancelled_makers)

    def _fillable(self, opposite: _Half, limit_key: int, need: int, owner: str) -> bool:
        """Whether `need` units would fill now, walking makers in the order matching would."""
        levels = opposite.levels
        heap = opposite.heap
        if not heap or heap[0] > limit_key:
            return False
        # The best level first: it settles most FOK orders without sorting the other levels.
        unmet = self._unmet(levels[heap[0]], need, owner)
        if unmet is None or unmet <= 0:
            return unmet is not None
        for key in sorted(key for key in levels if key <= limit_key)[1:]:  # [0] is the best level, done
            unmet = self._unmet(levels[key], unmet, owner)
            if unmet is None or unmet <= 0:
                return unmet is not None
        return False

    def _unmet(self, level: _Level, need: int, owner: str) -> int | None:
        """What is left of `need` after this level; None when an own order stops the taker."""
        self_trade = self._self_trade
        if self_trade == ALLOW:
            return need - level.quantity
        orders = self._orders
        for maker in level.orders:
            if orders.get(maker.id) is not maker:
                continue
            if maker.owner == owner:
                if self_trade == CANCEL_TAKER:
                    return None
                continue  # cancel_maker: it would be removed, not traded with
            need -= maker.remaining
            if need <= 0:
                return need
        return need

    def cancel(self, order_id: str) -> Order | None:
        """Remove a resting order; its `remaining` is the quantity cancelled. None if not resting."""
        orders = self._orders
        order = orders.pop(order_id, None)
        if order is None:
            return None
        if order.side == _BUY:
            level = self._bids.levels[-order.price]  # type: ignore[operator]
        else:
            level = self._asks.levels[order.price]  # type: ignore[index]
        level.count -= 1
        level.quantity -= order.remaining
        queue = level.orders
        if not level.count:
            queue.clear()
        elif queue[-1] is order:
            queue.pop()  # often the newest order: drop it now, for free
        elif len(queue) > 2 * level.count + 16:
            # Dead slots would otherwise pile up behind a long-lived order at the front.
            level.orders = deque(resting for resting in queue if orders.get(resting.id) is resting)
        return order

    def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def _best_key(self, half: _Half) -> int | None:
        heap = half.heap
        levels = half.levels
        while heap:
            key = heap[0]
            if levels[key].count:
                return key
            heappop(heap)
            del levels[key]
        return None

    def best_bid(self) -> int | None:
        key = self._best_key(self._bids)
        return None if key is None else -key

    def best_ask(self) -> int | None:
        return self._best_key(self._asks)

    def depth(self, levels: int = 10) -> dict[str, list[tuple[int, int, int]]]:
        """The best `levels` prices per side, best first: (price, quantity, number of orders)."""
        return {"bids": self._depth(self._bids, levels), "asks": self._depth(self._asks, levels)}

    @staticmethod
    def _depth(half: _Half, count: int) -> list[tuple[int, int, int]]:
        keys = nsmallest(count, (key for key, level in half.levels.items() if level.count))
        return [(level.price, level.quantity, level.count) for level in map(half.levels.__getitem__, keys)]

    def resting(self) -> list[Order]:
        """Every resting order: bids then asks, each side in priority order."""
        orders = self._orders
        result: list[Order] = []
        for half in (self._bids, self._asks):
            for key in sorted(half.levels):
                result.extend(order for order in half.levels[key].orders if orders.get(order.id) is order)
        return result

    def __len__(self) -> int:
        return len(self._orders)
