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


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 random chars (ULID layout), sortable by time."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_base32(millis, 10)}{_base32(randomness, 16)}"


def id_pattern(prefix: str) -> str:
    """A regular expression matching the ids `new_id(prefix)` makes, for paging cursors."""
    return f"^{prefix}_[{_ALPHABET}]{{26}}$"
