"""Matching throughput: operations per second through `Book.submit` / `Book.cancel` of the pure
core, on a seeded mixed stream over many listings (one Book each). Prints figures only; no
assertions on time.

    .venv/bin/python benchmarks/matching.py [--orders 1000000] [--seed 1] [--listings 100] [--tracemalloc]

The stream is made first, untimed, by running it once on scratch books, so that cancels name
orders that are really resting at that point (random live orders). Mix: ~60% limit orders (80%
gtc, 10% ioc, 10% fok), ~15% market orders (ioc), ~25% cancels. Prices sit around a per-listing
reference price, in ticks, inside a +/-10% band; owners are drawn from 50 participants per
listing, so self-trade prevention (cancel_taker) fires now and then. The timed replay runs on
fresh books with fresh Order objects, built before the clock starts; the figure is the number of
operations (submits + cancels) divided by the replay's wall time.

Memory: the process peak RSS (resource.getrusage ru_maxrss) before and after the replay; it
includes the pre-built stream. --tracemalloc adds a second, untimed replay under tracemalloc and
reports the peak of what the books allocate (orders pre-built, so not counted).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import resource
import shlex
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable without installing

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


def make_stream(count: int, seed: int, listings: int, depth: int) -> tuple[list[Operation], list[Operation], list[tuple[int, int, tuple[int, int]]]]:
    """`depth` opening orders per listing (gtc, not crossing), then `count` operations, cancels
    aimed at orders resting at that moment (found by running the stream on scratch books as it
    is made)."""
    rng = random.Random(seed)
    setups = listing_setup(rng, listings)
    books = [Book(band=band) for _, _, band in setups]
    live: list[list[str]] = [[] for _ in range(listings)]  # resting ids per listing, for a uniform random pick
    position: list[dict[str, int]] = [{} for _ in range(listings)]

    def forget(listing: int, order_id: str) -> None:
        ids, where = live[listing], position[listing]
        index = where.pop(order_id)
        last = ids.pop()
        if index < len(ids):
            ids[index] = last
            where[last] = index

    def rest(listing: int, order_id: str) -> None:
        position[listing][order_id] = len(live[listing])
        live[listing].append(order_id)

    seq = 0
    opening: list[Operation] = []
    for listing, (reference, tick, (low, high)) in enumerate(setups):
        for _ in range(depth):
            seq += 1
            side = Side.buy if seq % 2 else Side.sell
            away = tick * (1 + int(abs(rng.gauss(0, 15))))
            price = min(max(reference - away if side == Side.buy else reference + away, low), high)
            spec = (listing, f"o{seq}", f"p{listing}-{rng.randrange(OWNERS_PER_LISTING)}", side, OrderType.limit, price,
                    rng.choice(QUANTITIES), TimeInForce.gtc, seq)
            if books[listing].submit(Order(*spec[1:])).rested:
                rest(listing, spec[1])
            opening.append(("submit", spec))

    ops: list[Operation] = []
    while len(ops) < count:
        listing = rng.randrange(listings)
        reference, tick, (low, high) = setups[listing]
        roll = rng.random()
        if roll < 0.25 and live[listing]:
            order_id = rng.choice(live[listing])
            books[listing].cancel(order_id)
            forget(listing, order_id)
            ops.append(("cancel", (listing, order_id)))
            continue
        seq += 1
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
            if books[listing].get(fill.maker_id) is None and fill.maker_id in position[listing]:
                forget(listing, fill.maker_id)
        for maker_id in outcome.cancelled_makers:
            forget(listing, maker_id)
        if outcome.rested:
            rest(listing, spec[1])
        ops.append(("submit", spec))
    return opening, ops, setups


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


def max_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="operations in the timed stream (submits + cancels)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--listings", type=int, default=100)
    parser.add_argument("--depth", type=int, default=1000, help="opening gtc orders per listing, placed untimed")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the books' own peak allocation (slow)")
    args = parser.parse_args()
    print(f"$ {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")

    started = time.perf_counter()
    opening, ops, setups = make_stream(args.orders, args.seed, args.listings, args.depth)
    submits = sum(1 for kind, _ in ops if kind == "submit")
    markets = sum(1 for kind, spec in ops if kind == "submit" and spec[4] == OrderType.market)
    print(f"stream: {len(ops):,} operations over {args.listings} listings: {submits - markets:,} limit, {markets:,} market, "
          f"{len(ops) - submits:,} cancels (made in {time.perf_counter() - started:.1f} s, untimed)")

    books = [Book(band=band) for _, _, band in setups]
    replay(prepare(opening, books))
    print(f"opening books: {sum(len(book) for book in books):,} resting orders ({args.depth:,} placed per listing, untimed)")
    prepared = prepare(ops, books)
    rss_before = max_rss_mib()
    gc.collect()
    gc.freeze()  # the pre-built stream is long-lived: keep full collections from rescanning it
    started = time.perf_counter()
    trades, cancelled, rejected = replay(prepared)
    elapsed = time.perf_counter() - started
    resting = sum(len(book) for book in books)
    print(f"submit/cancel:  {len(ops) / elapsed:>12,.0f} operations/s  ({len(ops):,} in {elapsed:.2f} s, one core)")
    print(f"  trades {trades:,}; cancels that found their order {cancelled:,}; rejected submits {rejected:,}; "
          f"resting at the end {resting:,}")
    print(f"peak RSS (resource.getrusage ru_maxrss, whole process): {rss_before:,.0f} MiB before the replay, {max_rss_mib():,.0f} MiB after")

    if args.tracemalloc:
        gc.unfreeze()
        del prepared
        books = [Book(band=band) for _, _, band in setups]
        opening_prepared, prepared = prepare(opening, books), prepare(ops, books)
        tracemalloc.start()
        replay(opening_prepared)
        again = replay(prepared)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"books' peak allocation (tracemalloc peak, second untimed replay, Order objects pre-built): {peak / 2**20:,.1f} MiB; "
              f"same counts as the timed replay: {again == (trades, cancelled, rejected)}")


if __name__ == "__main__":
    main()
