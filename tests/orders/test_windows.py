"""The circuit breaker's windows kept in memory (`windows.TradeWindows`) say what a scan of every
trade would: random trades, numbered in the order made but stamped a little out of order, read
in pieces as the order desk reads them, against the window recomputed from scratch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.orders.surveillance import PriceWindow
from exchange.orders.windows import NewTrade, TradeWindows

START = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def scanned(trades: list[NewTrade], since: datetime) -> PriceWindow:
    inside = [t for t in trades if t[3] >= since]
    if not inside:
        return PriceWindow()
    first = min(inside, key=lambda t: (t[1], t[0]))
    return PriceWindow(first=first[2], low=min(t[2] for t in inside), high=max(t[2] for t in inside), count=len(inside))


steps = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(1, 3), st.integers(9_000, 11_000), st.integers(-5, 60)), max_size=6),  # (trades of one order, price, seconds late/early)
        st.integers(-30, 120),  # how far the window's start moves (backwards sometimes: a wider window or a clock set back)
    ),
    min_size=1, max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_windows_kept_in_memory_equal_a_scan_of_every_trade(plan: list[tuple[list[tuple[int, int, int]], int]]) -> None:
    kept = TradeWindows()
    made: list[NewTrade] = []
    seq = 0
    since = START
    clock = START
    for orders, moved in plan:
        fresh: list[NewTrade] = []
        for fills, price, skew in orders:
            seq += 1
            clock += timedelta(seconds=1)
            for fill in range(fills):
                fresh.append((f"trd_{seq:05d}_{fill}", seq, price + fill, clock - timedelta(seconds=skew)))
        made += fresh
        since += timedelta(seconds=moved)
        watermark = kept.watermark("lst", since)
        if watermark is None:
            kept.reset("lst", since, seq, [t for t in made if t[3] >= since])
        else:
            assert watermark <= seq
            kept.add("lst", seq, [t for t in made if t[1] > watermark and t[3] >= since])
        assert kept.window("lst", since) == scanned(made, since)
