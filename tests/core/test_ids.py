"""Identifiers sort in the order one process made them, even within a millisecond."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from exchange.core import ids


def test_ids_made_in_one_go_sort_in_the_order_they_were_made() -> None:
    made = [ids.new_id("trd") for _ in range(2_000)]  # many share a millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(re.match(ids.id_pattern("trd"), i) for i in made)


def digits(number: int, width: int) -> str:
    """Base 32 the long way, digit by digit: what `ids._base32` must give."""
    out = ""
    for _ in range(width):
        number, remainder = divmod(number, 32)
        out = ids._ALPHABET[remainder] + out
    return out


@given(st.integers(0, 2**50 - 1), st.integers(0, 32**16 - 1))
def test_an_id_is_its_milliseconds_and_randomness_in_crockford_base32(millis: int, randomness: int) -> None:
    assert ids._base32(millis << 80 | randomness, 26) == digits(millis, 10) + digits(randomness, 16)
    assert ids.new_id("ord", now_ms=millis).startswith(f"ord_{digits(millis, 10)}")


@given(st.integers(0, 2**170), st.integers(1, 33))
def test_base32_gives_the_lowest_digits_at_any_width(number: int, width: int) -> None:
    assert ids._base32(number, width) == digits(number % 32**width, width)
