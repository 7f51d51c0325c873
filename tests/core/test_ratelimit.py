"""The request-rate bookkeeping of exchange/ratelimit.py, with the shared bucket of
`Exchange.share_rate_limits` played here by a dict (the same arithmetic as its upsert)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.ratelimit import RateLimiter

START = datetime(2026, 12, 4, tzinfo=UTC)


class SharedBuckets:
    """What the rate_buckets upsert does: spending added to a bucket refilled at the rule's rate."""

    def __init__(self) -> None:
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at seconds)

    def share(self, limiter: RateLimiter, per_minute: int, now: datetime) -> None:
        spent = limiter.spending()
        at = now.timestamp()
        back = {}
        for key, count in spent.items():
            tokens, last = self.buckets.get(key, (float(per_minute), at))
            tokens = min(float(per_minute), tokens + max(0.0, at - last) * per_minute / 60) - count
            self.buckets[key] = (tokens, max(at, last))
            back[key] = tokens
        limiter.shared(back, per_minute, now)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 20),
    processes=st.integers(1, 4),
    steps=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["take", "take", "take", "give_back"])), max_size=80),
)
def test_processes_sharing_before_each_request_serve_the_limit_and_one_stale_request_each_at_most(
    limit: int, processes: int, steps: list[tuple[int, str]]
) -> None:
    """With the clock still and every process sharing before each request, the exchange serves
    at most the limit, plus for each process but the first one request it served before it had
    ever shared the participant (its own bucket still full): the bound of sharing."""
    shared = SharedBuckets()
    limiters = [RateLimiter() for _ in range(processes)]
    held = [0] * processes  # requests each process took and has not given back
    served = 0
    for process, action in steps:
        process %= processes
        limiter = limiters[process]
        shared.share(limiter, limit, START)
        if action == "take":
            if limiter.take("par", limit, START) is None:
                served += 1
                held[process] += 1
        elif held[process]:
            limiter.give_back("par")
            served -= 1
            held[process] -= 1
        assert served <= limit + processes - 1
    for limiter in limiters:
        shared.share(limiter, limit, START)
    assert shared.buckets.get("par", (float(limit), 0.0))[0] == limit - served  # nothing lost, nothing counted twice


def test_a_process_near_the_limit_learns_what_the_others_spent_without_spending_itself() -> None:
    shared = SharedBuckets()
    first, second = RateLimiter(), RateLimiter()
    for _ in range(6):
        assert first.take("par", 10, START) is None
    shared.share(first, 10, START)  # 4 left, and below half: `first` keeps sharing "par"
    for _ in range(4):
        assert second.take("par", 10, START) is None
    shared.share(second, 10, START)
    assert first.spending() == {"par": 0}
    first.unshared({"par": 0})
    shared.share(first, 10, START)
    assert first.take("par", 10, START) == 6  # none left anywhere: a token comes back every 6 s
    later = START + timedelta(seconds=60)
    assert first.take("par", 10, later) is None
    shared.share(first, 10, later)  # full again: no longer shared when nothing is spent
    assert first.spending() == {}
