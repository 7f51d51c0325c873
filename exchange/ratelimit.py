"""Per-participant request limits: a token bucket per participant, refilled continuously, in
this process's memory (so behind N processes the limit is N times the rule)."""

from __future__ import annotations

import math
from datetime import datetime

from exchange.core.errors import TooManyRequests


def too_many(limit: int, wait: int) -> TooManyRequests:
    return TooManyRequests(f"More than {limit} requests a minute (trading.toml: api.requests_per_minute); try again in {wait} s.", retry_after=wait)


class RateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at epoch seconds)
        self._max_keys = max_keys

    def take(self, key: str, per_minute: int, now: datetime) -> int | None:
        """Spend one request of `key`; None when allowed, else the seconds to wait."""
        at = now.timestamp()
        rate = per_minute / 60.0
        tokens, last = self._buckets.get(key, (float(per_minute), at))
        tokens = min(float(per_minute), tokens + max(0.0, at - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, at)
            return max(1, math.ceil((1.0 - tokens) / rate))
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()  # a flood of keys must not grow memory without bound
        self._buckets[key] = (tokens - 1.0, at)
        return None

    def give_back(self, key: str) -> None:
        """Undo one `take` whose request was not served after all (it will be taken again)."""
        found = self._buckets.get(key)
        if found is not None:
            self._buckets[key] = (found[0] + 1.0, found[1])
