"""Sealed-bid, uniform-price auction of a fixed number of data licences. Pure.

Each bid is a price per licence (integer fen) for `quantity` licences. Bids below the reserve
are out. The rest are ranked by price, highest first, and equal prices by arrival (`seq`, earlier
first). Licences go down the ranking until they run out; the last bid served may be filled only
in part (it gets what is left, not nothing), every bid after it gets nothing.

Every winner pays the same clearing price per licence:

- "nth": the lowest winning bid's price (the marginal winner sets the price);
- "n_plus_one": the highest losing bid's price, i.e. of the first bid in the ranking that got
  nothing or less than it asked for; the reserve when every eligible bid was filled in full.

The clearing price is never below the reserve. The outcome depends only on the bids and the
rule (not on the order they are passed in), so it can be re-derived from the stored bids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NTH_PRICE = "nth"
N_PLUS_ONE_PRICE = "n_plus_one"
RULES = frozenset({NTH_PRICE, N_PLUS_ONE_PRICE})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Bid:
    id: str
    bidder: str
    price: int
    """Per licence, in fen; > 0."""
    seq: int
    """Arrival order: the earlier bid wins a tie on price."""
    quantity: int = 1

    def __post_init__(self) -> None:
        if not _is_int(self.price) or self.price <= 0:
            raise ValueError(f"bid {self.id}: price must be a positive integer of fen, not {self.price!r}")
        if not _is_int(self.quantity) or self.quantity < 1:
            raise ValueError(f"bid {self.id}: quantity must be a positive integer, not {self.quantity!r}")
        if not _is_int(self.seq):
            raise ValueError(f"bid {self.id}: seq must be an integer, not {self.seq!r}")


@dataclass(frozen=True)
class AuctionResult:
    winners: list[tuple[str, int]]
    """(bid id, licences won), in ranking order."""
    price: int | None
    """The uniform clearing price per licence in fen; None when nobody wins."""
    losers: list[str]
    """Ids of the bids that won nothing (below reserve included), in ranking order."""
    rule: str


def _rank_key(bid: Bid) -> tuple[int, int, str]:
    # The id only breaks ties between bids that share a price and a seq (which arrival order
    # should never produce), so that the result still cannot depend on the input order.
    return (-bid.price, bid.seq, bid.id)


def clear(bids: Sequence[Bid], licences: int, reserve: int, rule: str) -> AuctionResult:
    if not _is_int(licences) or licences < 1:
        raise ValueError(f"licences must be at least 1, not {licences!r}")
    if not _is_int(reserve) or reserve < 0:
        raise ValueError(f"reserve must be a non-negative integer of fen, not {reserve!r}")
    if rule not in RULES:
        raise ValueError(f"unknown auction rule {rule!r}; expected one of {sorted(RULES)}")
    ids = [bid.id for bid in bids]
    if len(set(ids)) != len(ids):
        raise ValueError("bid ids must be unique")

    winners: list[tuple[str, int]] = []
    losers: list[str] = []
    lowest_winning_price: int | None = None
    highest_losing_price: int | None = None
    remaining = licences
    for bid in sorted(bids, key=_rank_key):
        if bid.price < reserve:
            losers.append(bid.id)
            continue
        won = min(bid.quantity, remaining)
        remaining -= won
        if won:
            winners.append((bid.id, won))
            lowest_winning_price = bid.price
        else:
            losers.append(bid.id)
        if won < bid.quantity and highest_losing_price is None:
            highest_losing_price = bid.price

    if lowest_winning_price is None:
        price = None
    elif rule == NTH_PRICE:
        price = max(lowest_winning_price, reserve)
    else:
        price = max(highest_losing_price if highest_losing_price is not None else reserve, reserve)
    return AuctionResult(winners=winners, price=price, losers=losers, rule=rule)
