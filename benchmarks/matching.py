"""Matching throughput: orders per second through `Book.submit` / `Book.cancel` of the pure
core, on a seeded mixed stream over many listings (one Book each), and the process's peak memory.
Prints figures only; no assertions on time.

    .venv/bin/python benchmarks/matching.py [--orders 1000000] [--seed 1] [--listings 100] [--chunk 50000]

The stream is made in chunks, untimed, by running it on scratch books as it is made, so that
cancels name orders that are really resting at that point (random live orders). Mix: ~60% limit
orders (80% gtc, 10% ioc, 10% fok), ~15% market orders (ioc), ~25% cancels. Prices sit around a
per-listing reference price, in ticks, inside a +/-10% band; owners are drawn from 50
participants per listing, so self-trade prevention (cancel_taker) fires now and then. Each chunk
is then replayed, timed, on the measured books with fresh Order objects built before the clock
starts; the figure is the operations (submits + cancels) divided by the summed replay time. The
garbage collector runs as it would in a server (collected between chunks, untimed, never frozen).

Memory: the process's peak RSS (resource.getrusage ru_maxrss) at the end, in MB (10^6 bytes):
the interpreter, the measured books, the scratch books that make the stream and one chunk.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, result  # noqa: E402

from exchange.orders.matching import Book, Order, OrderRejected, OrderType, Side, TimeInForce  # noqa: E402

OWNERS_PER_LISTING = 50
BAND_PERCENT = 10
QUANTITIES = (1, 1, 2, 5, 10, 10, 20, 50, 100, 250)  # units per limit order
# Smaller market orders, so that with the opening depth the books neither drain nor pile up.
MARKET_QUANTITIES = (1, 2, 5, 10, 20)

# A submit spec: (listing, id, owner, side, type, price, quantity, time in force, seq).
Spec = tuple[int, str, str, Side, OrderType, "int | None", int, TimeInForce, int]
# An operation: ("submit", spec) or ("cancel", (listing, order id)).
Operation = tuple[str, tuple]


def listing_setup(rng: random.Random, listings: int) -> list[tuple[int, int, tuple[int, int]]]:
    """(reference price, tick, band) per listing, in fen."""
    setups = []
    for _ in range(listings):
        tick = rng.choice((1, 5, 10, 50, 100))
        reference = tick * rng.randint(200, 2000)
        half_band = reference * BAND_PERCENT // 100 // tick * tick
        setups.append((reference, tick, (reference - half_band, reference + half_band)))
    return setups


class Stream:
    """The seeded stream, made chunk by chunk: `depth` opening orders per listing (gtc, not
    crossing), then operations whose cancels aim at orders resting at that moment (found by
    running the stream on scratch books as it is made). Only one chunk exists at a time, so the
    process's memory is the books' and one chunk's, not the whole stream's."""

    def __init__(self, seed: int, listings: int) -> None:
        self.rng = random.Random(seed)
        self.listings = listings
        self.setups = listing_setup(self.rng, listings)
        self.books = [Book(band=band) for _, _, band in self.setups]
        self.live: list[list[str]] = [[] for _ in range(listings)]  # resting ids per listing, for a uniform random pick
        self.position: list[dict[str, int]] = [{} for _ in range(listings)]
        self.seq = 0

    def _forget(self, listing: int, order_id: str) -> None:
        ids, where = self.live[listing], self.position[listing]
        index = where.pop(order_id)
        last = ids.pop()
        if index < len(ids):
            ids[index] = last
            where[last] = index

    def _rest(self, listing: int, order_id: str) -> None:
        self.position[listing][order_id] = len(self.live[listing])
        self.live[listing].append(order_id)

    def opening(self, depth: int) -> list[Operation]:
        rng, opening = self.rng, []
        for listing, (reference, tick, (low, high)) in enumerate(self.setups):
            for _ in range(depth):
                self.seq += 1
                seq = self.seq
                side = Side.buy if seq % 2 else Side.sell
                away = tick * (1 + int(abs(rng.gauss(0, 15))))
                price = min(max(reference - away if side == Side.buy else reference + away, low), high)
                spec = (listing, f"o{seq}", f"p{listing}-{rng.randrange(OWNERS_PER_LISTING)}", side, OrderType.limit, price,
                        rng.choice(QUANTITIES), TimeInForce.gtc, seq)
                if self.books[listing].submit(Order(*spec[1:])).rested:
                    self._rest(listing, spec[1])
                opening.append(("submit", spec))
        return opening

    def chunk(self, count: int) -> list[Operation]:
        rng, books, live, ops = self.rng, self.books, self.live, []
        while len(ops) < count:
            listing = rng.randrange(self.listings)
            reference, tick, (low, high) = self.setups[listing]
            roll = rng.random()
            if roll < 0.25 and live[listing]:
                order_id = rng.choice(live[listing])
                books[listing].cancel(order_id)
                self._forget(listing, order_id)
                ops.append(("cancel", (listing, order_id)))
                continue
            self.seq += 1
            seq = self.seq
            side = Side.buy if rng.random() < 0.5 else Side.sell
            owner = f"p{listing}-{rng.randrange(OWNERS_PER_LISTING)}"
            if roll < 0.40:
                quantity = rng.choice(MARKET_QUANTITIES)
                spec = (listing, f"o{seq}", owner, side, OrderType.market, None, quantity, TimeInForce.ioc, seq)
            else:
                # Buyers bid a little under the reference, sellers ask a little over it, and the two
                # overlap enough that some limit orders trade on arrival.
                quantity = rng.choice(QUANTITIES)
                offset = round(rng.gauss(4, 6))
                price = reference - offset * tick if side == Side.buy else reference + offset * tick
                price = min(max(price, low), high)
                tif_roll = rng.random()
                tif = TimeInForce.gtc if tif_roll < 0.8 else TimeInForce.ioc if tif_roll < 0.9 else TimeInForce.fok
                spec = (listing, f"o{seq}", owner, side, OrderType.limit, price, quantity, tif, seq)
            outcome = books[listing].submit(Order(*spec[1:]))
            for fill in outcome.fills:
                if books[listing].get(fill.maker_id) is None and fill.maker_id in self.position[listing]:
                    self._forget(listing, fill.maker_id)
            for maker_id in outcome.cancelled_makers:
                self._forget(listing, maker_id)
            if outcome.rested:
                self._rest(listing, spec[1])
            ops.append(("submit", spec))
        return ops


def prepare(ops: list[Operation], books: list[Book]) -> list[tuple[bool, Book, object]]:
    """Fresh Order objects and direct book references, so the timed loop does only the calls."""
    prepared: list[tuple[bool, Book, object]] = []
    for kind, payload in ops:
        if kind == "cancel":
            listing, order_id = payload
            prepared.append((True, books[listing], order_id))
        else:
            prepared.append((False, books[payload[0]], Order(*payload[1:])))
    return prepared


def replay(prepared: list[tuple[bool, Book, object]]) -> tuple[int, int, int]:
    """(trades, cancels that found their order, rejected submits)."""
    trades = cancelled = rejected = 0
    for is_cancel, book, payload in prepared:
        if is_cancel:
            if book.cancel(payload) is not None:  # type: ignore[arg-type]
                cancelled += 1
        else:
            try:
                trades += len(book.submit(payload).fills)  # type: ignore[arg-type]
            except OrderRejected:
                rejected += 1
    return trades, cancelled, rejected


def max_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000, help="operations in the timed stream (submits + cancels)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--listings", type=int, default=100)
    parser.add_argument("--depth", type=int, default=1000, help="opening gtc orders per listing, placed untimed")
    parser.add_argument("--chunk", type=int, default=50_000, help="operations made (untimed) and replayed (timed) at a time")
    args = parser.parse_args()
    header()

    stream = Stream(args.seed, args.listings)
    books = [Book(band=band) for _, _, band in stream.setups]
    made_s = time.perf_counter()
    replay(prepare(stream.opening(args.depth), books))
    made_s = time.perf_counter() - made_s
    print(f"opening books: {sum(len(book) for book in books):,} resting orders ({args.depth:,} placed per listing, untimed)")
    counts = {"limit": 0, "market": 0, "cancel": 0}
    trades = cancelled = rejected = 0
    elapsed = 0.0
    done = 0
    while done < args.orders:
        started = time.perf_counter()
        ops = stream.chunk(min(args.chunk, args.orders - done))
        for kind, spec in ops:
            counts["cancel" if kind == "cancel" else "market" if spec[4] == OrderType.market else "limit"] += 1
        prepared = prepare(ops, books)
        del ops
        gc.collect()
        made_s += time.perf_counter() - started
        started = time.perf_counter()
        chunk_trades, chunk_cancelled, chunk_rejected = replay(prepared)
        elapsed += time.perf_counter() - started
        trades, cancelled, rejected = trades + chunk_trades, cancelled + chunk_cancelled, rejected + chunk_rejected
        done += len(prepared)
        del prepared
    resting = sum(len(book) for book in books)
    rate = done / elapsed
    print(f"stream: {done:,} operations over {args.listings} listings: {counts['limit']:,} limit, {counts['market']:,} market, "
          f"{counts['cancel']:,} cancels (made in chunks of {args.chunk:,}, {made_s:.1f} s, untimed)")
    print(f"submit/cancel:  {rate:>12,.0f} operations/s  ({done:,} in {elapsed:.2f} s of replay, one core)")
    print(f"  submits alone {(done - counts['cancel']) / elapsed:,.0f}/s of that time; trades {trades:,}; cancels that found their order "
          f"{cancelled:,}; rejected submits {rejected:,}; resting at the end {resting:,}")
    peak = max_rss_mb()
    print(f"peak RSS (resource.getrusage ru_maxrss, whole process: interpreter, the replayed books, the scratch books that "
          f"make the stream, one chunk): {peak:,.0f} MB")
    size = f"{done:,} operations, {args.listings} listings"
    mix = f"{counts['limit']:,} limit, {counts['market']:,} market, {counts['cancel']:,} cancels; {trades:,} trades"
    result("matching core", round(rate), "orders/s", aim=("≥", 300_000), size=size, note=f"submits + cancels per second of replay; {mix}")
    result("matching core peak memory", round(peak), "MB", aim=("≤", 400), size=size, note="peak RSS of the whole process")


if __name__ == "__main__":
    main()
