"""Identifiers: time-ordered, URL-safe, prefixed by kind so a stray id names what it is."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# Every pair of digits, by the ten bits they stand for: two digits a table lookup. Every order
# makes several ids, so this is on the order path; the standard library's base32 (RFC 4648's
# alphabet, turned into ours) took twice as long, its arithmetic done in Python before 3.13.
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]


def _base32(number: int, width: int) -> str:
    """The lowest `width` base-32 digits of `number`."""
    pairs, odd = divmod(width, 2)
    digits = "".join([_PAIRS[number >> (5 * odd + 10 * n) & 1023] for n in range(pairs - 1, -1, -1)])
    return digits + _ALPHABET[number & 31] if odd else digits


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
    return f"{prefix}_{_base32(millis << 80 | randomness, 26)}"  # 10 digits of milliseconds, 16 of randomness


def id_pattern(prefix: str) -> str:
    """A regular expression matching the ids `new_id(prefix)` makes, for paging cursors."""
    return f"^{prefix}_[{_ALPHABET}]{{26}}$"
