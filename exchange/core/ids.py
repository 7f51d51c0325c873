"""Identifiers: time-ordered, URL-safe, prefixed by kind so a stray id names what it is."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _base32(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, remainder = divmod(number, 32)
        chars.append(_ALPHABET[remainder])
    return "".join(reversed(chars))


_last = [0, 0]  # the millisecond and randomness of this process's latest id
_RANDOM_MAX = 32**16 - 1


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 random chars (ULID layout), sortable by time.
    Within a millisecond a process's ids keep increasing (monotonic ULIDs), so rows made one
    after another in one go (an order's trades) sort in the order they were made."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    randomness = int.from_bytes(os.urandom(10), "big")
    if now_ms is None:
        if millis <= _last[0] and _last[1] < _RANDOM_MAX:
            millis, randomness = _last[0], _last[1] + 1
        _last[0], _last[1] = millis, randomness
    return f"{prefix}_{_base32(millis, 10)}{_base32(randomness, 16)}"


def id_pattern(prefix: str) -> str:
    """A regular expression matching the ids `new_id(prefix)` makes, for paging cursors."""
    return f"^{prefix}_[{_ALPHABET}]{{26}}$"
