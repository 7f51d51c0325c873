"""The uniform-price licence auction: worked examples of both pricing rules, then properties of
random bid sets (allocation, price bounds, input-order independence)."""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.orders.auction import N_PLUS_ONE_PRICE, NTH_PRICE, RULES, AuctionResult, Bid, clear


def bid(bid_id: str, price: int, seq: int, quantity: int = 1) -> Bid:
    return Bid(id=bid_id, bidder=f"bidder-{bid_id}", price=price, seq=seq, quantity=quantity)


# --- examples ------------------------------------------------------------------------------------


def test_exclusive_licence_nth_price_is_the_winners_own_bid() -> None:
    bids = [bid("a", 500, 1), bid("b", 800, 2), bid("c", 650, 3)]
    assert clear(bids, 1, 100, NTH_PRICE) == AuctionResult(winners=[("b", 1)], price=800, losers=["c", "a"], rule="nth")


def test_exclusive_licence_n_plus_one_is_second_price() -> None:
    bids = [bid("a", 500, 1), bid("b", 800, 2), bid("c", 650, 3)]
    assert clear(bids, 1, 100, N_PLUS_ONE_PRICE) == AuctionResult(winners=[("b", 1)], price=650, losers=["c", "a"], rule="n_plus_one")


def test_three_licences_both_rules() -> None:
    bids = [bid("a", 300, 1), bid("b", 900, 2), bid("c", 700, 3), bid("d", 500, 4), bid("e", 400, 5)]
    nth = clear(bids, 3, 0, NTH_PRICE)
    assert nth.winners == [("b", 1), ("c", 1), ("d", 1)]
    assert nth.losers == ["e", "a"]
    assert nth.price == 500
    assert clear(bids, 3, 0, N_PLUS_ONE_PRICE).price == 400


def test_equal_prices_are_won_by_the_earlier_bid() -> None:
    bids = [bid("late", 600, 9), bid("early", 600, 2), bid("middle", 600, 5)]
    result = clear(bids, 2, 0, NTH_PRICE)
    assert result.winners == [("early", 1), ("middle", 1)]
    assert result.losers == ["late"]
    assert result.price == 600
    assert clear(bids, 2, 0, N_PLUS_ONE_PRICE).price == 600


def test_bids_below_reserve_are_out_and_the_price_never_falls_below_it() -> None:
    bids = [bid("a", 1_000, 1), bid("b", 450, 2), bid("c", 700, 3)]
    nth = clear(bids, 2, 500, NTH_PRICE)
    assert nth.winners == [("a", 1), ("c", 1)]
    assert nth.losers == ["b"]
    assert nth.price == 700
    # The only losing bid is under the reserve, so it cannot set the second price.
    assert clear(bids, 2, 500, N_PLUS_ONE_PRICE).price == 500


def test_a_bid_at_exactly_the_reserve_is_in() -> None:
    result = clear([bid("a", 500, 1)], 1, 500, NTH_PRICE)
    assert result.winners == [("a", 1)]
    assert result.price == 500


def test_unsold_licences_leave_the_n_plus_one_price_at_the_reserve() -> None:
    result = clear([bid("a", 900, 1), bid("b", 800, 2)], 5, 300, N_PLUS_ONE_PRICE)
    assert result.winners == [("a", 1), ("b", 1)]
    assert result.losers == []
    assert result.price == 300


@pytest.mark.parametrize("rule", sorted(RULES))
def test_no_bids_no_winners(rule: str) -> None:
    assert clear([], 3, 100, rule) == AuctionResult(winners=[], price=None, losers=[], rule=rule)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_all_bids_below_reserve_no_winners(rule: str) -> None:
    result = clear([bid("a", 99, 1), bid("b", 50, 2)], 1, 100, rule)
    assert result == AuctionResult(winners=[], price=None, losers=["a", "b"], rule=rule)


def test_quantities_fill_down_the_ranking_and_the_marginal_bid_is_filled_in_part() -> None:
    bids = [bid("a", 900, 1, quantity=2), bid("b", 800, 2, quantity=3), bid("c", 700, 3, quantity=1)]
    nth = clear(bids, 4, 0, NTH_PRICE)
    assert nth.winners == [("a", 2), ("b", 2)]
    assert nth.losers == ["c"]
    assert nth.price == 800
    # b asked for 3 and got 2: it is the highest losing bid for its unfilled licence.
    assert clear(bids, 4, 0, N_PLUS_ONE_PRICE).price == 800


def test_quantities_filled_in_full_price_from_the_next_bid() -> None:
    bids = [bid("a", 900, 1, quantity=2), bid("b", 800, 2, quantity=2), bid("c", 700, 3, quantity=5)]
    assert clear(bids, 4, 0, NTH_PRICE).price == 800
    n_plus_one = clear(bids, 4, 0, N_PLUS_ONE_PRICE)
    assert n_plus_one.winners == [("a", 2), ("b", 2)]
    assert n_plus_one.price == 700


def test_a_bid_for_more_than_all_licences_takes_them_all() -> None:
    result = clear([bid("a", 900, 1, quantity=10), bid("b", 800, 2)], 3, 0, N_PLUS_ONE_PRICE)
    assert result.winners == [("a", 3)]
    assert result.losers == ["b"]
    assert result.price == 900


@pytest.mark.parametrize(
    ("licences", "reserve", "rule", "message"),
    [(0, 0, NTH_PRICE, "licences"), (1, -1, NTH_PRICE, "reserve"), (1, 0, "vickrey", "unknown auction rule")],
)
def test_bad_parameters_are_refused(licences: int, reserve: int, rule: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clear([bid("a", 100, 1)], licences, reserve, rule)


def test_repeated_bid_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        clear([bid("a", 100, 1), bid("a", 200, 2)], 1, 0, NTH_PRICE)


@pytest.mark.parametrize(("price", "quantity"), [(0, 1), (-5, 1), (100, 0), (1.5, 1), (True, 1)])
def test_bad_bids_are_refused(price: int, quantity: int) -> None:
    with pytest.raises(ValueError):
        bid("a", price, 1, quantity)


# --- properties ----------------------------------------------------------------------------------


@st.composite
def auctions(draw: st.DrawFn) -> tuple[list[Bid], int, int]:
    count = draw(st.integers(min_value=0, max_value=12))
    seqs = draw(st.permutations(range(count)))
    # A narrow price range makes equal prices (and so ties by time) common.
    bids = [
        bid(f"b{index}", draw(st.integers(min_value=1, max_value=20)), seqs[index], draw(st.integers(min_value=1, max_value=4)))
        for index in range(count)
    ]
    return bids, draw(st.integers(min_value=1, max_value=8)), draw(st.integers(min_value=0, max_value=20))


rules = st.sampled_from(sorted(RULES))


def outranks(a: Bid, b: Bid) -> bool:
    return (a.price, -a.seq) > (b.price, -b.seq)


@given(auctions(), rules)
def test_allocation_never_exceeds_the_licences_nor_what_was_asked(auction: tuple[list[Bid], int, int], rule: str) -> None:
    bids, licences, reserve = auction
    result = clear(bids, licences, reserve, rule)
    by_id = {b.id: b for b in bids}
    assert len(result.winners) <= licences
    assert sum(won for _, won in result.winners) <= licences
    assert all(1 <= won <= by_id[bid_id].quantity for bid_id, won in result.winners)
    assert sorted([bid_id for bid_id, _ in result.winners] + result.losers) == sorted(by_id)
    eligible_demand = sum(b.quantity for b in bids if b.price >= reserve)
    assert sum(won for _, won in result.winners) == min(licences, eligible_demand)
    assert (result.price is None) == (eligible_demand == 0)
    assert result.rule == rule


@given(auctions(), rules)
def test_winners_pay_at_most_their_bid_and_at_least_the_reserve(auction: tuple[list[Bid], int, int], rule: str) -> None:
    bids, licences, reserve = auction
    result = clear(bids, licences, reserve, rule)
    by_id = {b.id: b for b in bids}
    if result.price is None:
        return
    assert result.price >= reserve
    assert all(by_id[bid_id].price >= result.price for bid_id, _ in result.winners)
    assert all(by_id[bid_id].price <= result.price for bid_id in result.losers)


@given(auctions())
def test_under_nth_no_loser_outranks_a_winner(auction: tuple[list[Bid], int, int]) -> None:
    bids, licences, reserve = auction
    result = clear(bids, licences, reserve, NTH_PRICE)
    by_id = {b.id: b for b in bids}
    winners = [by_id[bid_id] for bid_id, _ in result.winners]
    for loser in (by_id[bid_id] for bid_id in result.losers):
        assert all(outranks(winner, loser) for winner in winners)
        assert all(loser.price <= winner.price for winner in winners)


@given(auctions(), rules, st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_result(auction: tuple[list[Bid], int, int], rule: str, random: Random) -> None:
    bids, licences, reserve = auction
    shuffled = list(bids)
    random.shuffle(shuffled)
    assert clear(shuffled, licences, reserve, rule) == clear(bids, licences, reserve, rule)


@given(auctions())
def test_n_plus_one_price_is_never_above_nth_price(auction: tuple[list[Bid], int, int]) -> None:
    bids, licences, reserve = auction
    nth = clear(bids, licences, reserve, NTH_PRICE)
    n_plus_one = clear(bids, licences, reserve, N_PLUS_ONE_PRICE)
    assert n_plus_one.winners == nth.winners
    assert n_plus_one.losers == nth.losers
    if nth.price is None:
        assert n_plus_one.price is None
    else:
        assert n_plus_one.price is not None
        assert reserve <= n_plus_one.price <= nth.price
