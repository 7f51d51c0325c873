"""Helpers of exchange.db that shape statements."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exchange.db import in_list


@given(st.lists(st.text(max_size=3), max_size=300))
def test_an_in_list_holds_the_same_values_in_a_power_of_two_of_places(values: list[str]) -> None:
    padded = in_list(values)
    assert set(padded) == set(values) and padded == sorted(padded)
    assert len(padded) == 0 or len(padded) & (len(padded) - 1) == 0  # a power of two
    assert len(padded) < 2 * len(set(values)) or len(set(values)) <= 1  # never more than twice the values


def test_lists_of_any_length_up_to_500_make_ten_statement_texts() -> None:
    """Each length an IN list takes is one statement text to prepare per connection."""
    assert len({len(in_list(range(n))) for n in range(1, 501)}) == 10
