"""Identifiers: time-ordered, URL-safe, prefixed by kind so a stray id names what it is."""

from __future__ import annotations

import base64
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# The standard library's base32 (RFC 4648's alphabet) does the arithmetic in C; a table turns
# its digits into ours. Every order makes several ids, so this is on the order path.
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def _base32(number: int, width: int) -> str:
    """`number` as `width` base-32 digits (at most 32: 160 bits)."""
    return base64.b32encode(number.to_bytes(20, "big"))[32 - width :].translate(_FROM_RFC4648).decode()


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
