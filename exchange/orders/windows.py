"""Circuit-breaker windows kept in memory, exact and cheap to bring up to date.

The breaker compares a book's trades within the last `circuit_breaker_minutes`: the first price
(lowest sequence number), the lowest, the highest, how many. Asking PostgreSQL for that scans
every trade in the window, so it costs more the busier the book: at a few hundred trades a second
the order desk spent more on it than on anything else within minutes. Here each book keeps the
trades of its window; the desk adds only the trades numbered after the last it saw (a book's
trades carry the sequence number of the transaction that made them, taken under the book's lock,
so they are numbered in the order they were committed) and drops those that left the window.
No I/O: `surveillance.cached_windows` reads the trades."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from exchange.orders.surveillance import PriceWindow

NewTrade = tuple[str, int, int, datetime]
"""(trade id, sequence number, price, at)."""


@dataclass
class _Book:
    complete_since: datetime
    """Every trade at or after this time, numbered up to `upto`, is here."""
    upto: int
    live: dict[str, tuple[int, int]] = field(default_factory=dict)  # trade id -> (seq, price)
    by_at: list[tuple[datetime, str]] = field(default_factory=list)
    # Heaps whose tops are cleared lazily of trades that left the window.
    lows: list[tuple[int, str]] = field(default_factory=list)
    highs: list[tuple[int, str]] = field(default_factory=list)  # (-price, id)
    firsts: list[tuple[int, str, int]] = field(default_factory=list)  # (seq, id, price)


class TradeWindows:
    """The trades of each book's window, as far as the caller has told it."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}

    def watermark(self, listing_id: str, since: datetime) -> int | None:
        """The last sequence number seen of the book, or None: read its window afresh (never
        read, or the window now reaches back further than what is kept)."""
        book = self._books.get(listing_id)
        return book.upto if book is not None and book.complete_since <= since else None

    def reset(self, listing_id: str, since: datetime, upto: int, trades: list[NewTrade]) -> None:
        """The book's whole window: every trade at or after `since`, numbered up to `upto`."""
        self._books[listing_id] = _Book(complete_since=since, upto=upto)
        self.add(listing_id, upto, trades)

    def add(self, listing_id: str, upto: int, trades: list[NewTrade]) -> None:
        """Trades numbered after the watermark, up to `upto` (every one of them)."""
        book = self._books[listing_id]
        for trade_id, seq, price, at in trades:
            if trade_id in book.live:
                continue
            book.live[trade_id] = (seq, price)
            heapq.heappush(book.by_at, (at, trade_id))
            heapq.heappush(book.lows, (price, trade_id))
            heapq.heappush(book.highs, (-price, trade_id))
            heapq.heappush(book.firsts, (seq, trade_id, price))
        book.upto = max(book.upto, upto)

    def window(self, listing_id: str, since: datetime) -> PriceWindow:
        book = self._books[listing_id]
        while book.by_at and book.by_at[0][0] < since:
            book.live.pop(heapq.heappop(book.by_at)[1], None)
        book.complete_since = max(book.complete_since, since)
        live = book.live
        if len(book.lows) > 2 * len(live) + 64:  # too many departed trades below the tops: rebuild
            book.lows = [(price, i) for i, (_, price) in live.items()]
            book.highs = [(-price, i) for i, (_, price) in live.items()]
            book.firsts = [(seq, i, price) for i, (seq, price) in live.items()]
            for heap in (book.lows, book.highs, book.firsts):
                heapq.heapify(heap)
        for heap in (book.lows, book.highs):
            while heap and heap[0][1] not in live:
                heapq.heappop(heap)
        while book.firsts and book.firsts[0][1] not in live:
            heapq.heappop(book.firsts)
        if not live:
            return PriceWindow()
        return PriceWindow(first=book.firsts[0][2], low=book.lows[0][0], high=-book.highs[0][0], count=len(live))
