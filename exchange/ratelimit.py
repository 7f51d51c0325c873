"""Per-participant request limits: a token bucket per participant, refilled continuously.

Each process decides from its own buckets, in memory, and shares what it spent: on PostgreSQL,
where several processes serve one exchange, every process adds its spending to one bucket per
participant in the database a few times a second (`share_rate_limits`) and takes back the
bucket as all processes left it. A process shares the participants it served since the last
share, and those whose bucket here is below half full: near the limit, it keeps learning what
the others spend even while it serves the participant nothing. So the rule holds across
processes, give or take what a participant can spend in one process between two shares
(`Settings.rate_share_interval_ms`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

from exchange.core.errors import TooManyRequests


def too_many(limit: int, wait: int) -> TooManyRequests:
    return TooManyRequests(f"More than {limit} requests a minute (trading.toml: api.requests_per_minute); try again in {wait} s.", retry_after=wait)


class RateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at epoch seconds)
        self._max_keys = max_keys
        self._spent: defaultdict[str, int] = defaultdict(int)  # taken, net of given back, since the last share
        self._low: set[str] = set()  # keys whose bucket here fell below half full

    def take(self, key: str, per_minute: int, now: datetime) -> int | None:
        """Spend one request of `key`; None when allowed, else the seconds to wait."""
        at = now.timestamp()
        rate = per_minute / 60.0
        tokens, last = self._buckets.get(key, (float(per_minute), at))
        tokens = min(float(per_minute), tokens + max(0.0, at - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, max(at, last))
            return max(1, math.ceil((1.0 - tokens) / rate))
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()  # a flood of keys must not grow memory without bound
        self._buckets[key] = (tokens - 1.0, max(at, last))
        self._spent[key] += 1
        if tokens - 1.0 < per_minute / 2:
            self._low.add(key)
        return None

    def give_back(self, key: str) -> None:
        """Undo one `take` whose request was not served after all (it will be taken again)."""
        found = self._buckets.get(key)
        if found is not None:
            self._buckets[key] = (found[0] + 1.0, found[1])
            self._spent[key] -= 1

    def spending(self) -> dict[str, int]:
        """What was spent since the last call, by key, handed over for sharing (and forgotten
        here); with every key below half full, if only with 0 spent."""
        spent = {key: count for key, count in self._spent.items() if count}
        self._spent.clear()
        for key in self._low:
            spent.setdefault(key, 0)
        return spent

    def unshared(self, spent: Mapping[str, int]) -> None:
        """Spending handed over for a share that failed: shared with the next one instead."""
        for key, count in spent.items():
            self._spent[key] += count

    def shared(self, buckets: Mapping[str, float], per_minute: int, at: datetime) -> None:
        """Take the shared buckets (tokens left at `at`, after every process's spending that was
        shared) as this process's own, less what it spent here since it handed its spending over."""
        seconds = at.timestamp()
        for key, tokens in buckets.items():
            tokens -= self._spent.get(key, 0)
            self._buckets[key] = (tokens, seconds)
            if tokens >= per_minute / 2:
                self._low.discard(key)
