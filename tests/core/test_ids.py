"""Identifiers sort in the order one process made them, even within a millisecond."""

from __future__ import annotations

import re

from exchange.core import ids


def test_ids_made_in_one_go_sort_in_the_order_they_were_made() -> None:
    made = [ids.new_id("trd") for _ in range(2_000)]  # many share a millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(re.match(ids.id_pattern("trd"), i) for i in made)
