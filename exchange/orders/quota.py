"""A quota order against its book, without I/O: the fills, their signed contracts and trades, and
the one journal that swaps holds for escrow. The caller loads the resting orders and the parties'
monthly volumes, and stores what comes back; one order at a time (`OrderService`) or a batch of
them in one transaction (`desk`) share this code, so both trade alike.

Funds: a buy's worst case (limit, or the band's edge for a market order, times quantity, plus
the buyer's fee) is held as a pending ledger transfer while it rests. Each fill swaps the
matching part of the hold for the contract's escrow; the buyer's fee share of a fill never
exceeds its share of what was held, so a resting order can always pay for its fills."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from exchange.core.canonical import sha256_hex
from exchange.core.errors import RuleViolated
from exchange.core.ids import new_id
from exchange.orders import contracts, matching
from exchange.rulebook import trading
from exchange.rulebook.evaluate import Violation
from exchange.rulebook.store import ActiveRules
from exchange.settlement import posting
from exchange.settlement.posting import Phase, References, Transfer, TransferKind
from exchange.settlement.signing import Signer
from exchange.tables import Contract, Listing, Order, Trade, new_row

CANCEL_REASONS = {
    "ioc": "immediate-or-cancel remainder", "fok": "fill-or-kill could not fill completely", "market": "market order remainder",
    "band": "no more liquidity inside the price band", "self_trade": "it would have traded with the same participant's order",
}


def money(plan: dict[str, Any], name: str) -> tuple[int, str]:
    amount = plan.get(name) or {}
    return int(amount.get("amount", 0)), str(amount.get("currency", "CNY"))


def refuse(violations: Sequence[Violation], rules: ActiveRules) -> RuleViolated:
    return RuleViolated(
        "The order is refused: " + "; ".join(f"{v.rule}: {v.message}" for v in violations),
        violations=[msgspec.to_builtins(v) for v in violations],
        rulebook_hash=rules.hash,
    )


def hold_transfer(order: Order, amount: int, currency: str, vendor_id: str) -> Transfer:
    number = int(order.hold_id.rsplit(".", 1)[-1]) + 1 if order.hold_id else 1
    order.hold_id = f"{order.id}.hold.{number}"
    order.held = amount
    return Transfer(
        id=order.hold_id, kind=TransferKind.hold, phase=Phase.pending, debit_account=posting.available(order.participant_id, currency),
        credit_account=posting.available(vendor_id, currency), amount=amount, currency=currency,
        references=References(order=order.id, listing=order.listing_id),
    )


def release_transfer(order: Order, why: str) -> Transfer | None:
    if not order.hold_id or not order.held:
        return None
    transfer = Transfer(
        id=f"{order.hold_id}.release", kind=TransferKind.release, phase=Phase.void, pending_id=order.hold_id,
        references=References(order=order.id, listing=order.listing_id, note=why),
    )
    order.held = 0
    return transfer


_SIDES = {side.value: side for side in matching.Side}
_TYPES = {kind.value: kind for kind in matching.OrderType}
_TIMES_IN_FORCE = {time.value: time for time in matching.TimeInForce}
_ENGINE_FIELDS = ("id", "participant_id", "side", "type", "price", "quantity", "time_in_force", "seq", "remaining")


def engine_order(order: Order) -> matching.Order:
    # Read from the instance's dict where the columns are loaded (a batch builds hundreds of
    # these: each attribute through the ORM's descriptor costs more than the rest of the work),
    # else through the ORM, which loads what is missing.
    loaded = order.__dict__
    try:
        id_, owner, side, type_, price, quantity, time_in_force, seq, remaining = (loaded[name] for name in _ENGINE_FIELDS)
    except KeyError:
        id_, owner, side, type_, price, quantity, time_in_force, seq, remaining = (getattr(order, name) for name in _ENGINE_FIELDS)
    return matching.Order(
        id=id_, owner=owner, side=_SIDES[side], type=_TYPES[type_], price=price, quantity=quantity,
        time_in_force=_TIMES_IN_FORCE[time_in_force], seq=seq, remaining=remaining,
    )


@dataclass
class Market:
    """One quota book in memory for the length of a transaction: the engine's book, the stored
    orders it holds, and what a fill needs to price and sign its contract."""

    rules: ActiveRules
    listing: Listing
    plan: dict[str, Any]
    signer: Signer
    now: datetime
    volumes: dict[str, int]
    """Each party's trading volume this month, kept up to date as contracts form here."""
    book: matching.Book = field(init=False)
    orders: dict[str, Order] = field(default_factory=dict)
    band: tuple[int, int] = field(init=False)
    tiered: tuple[bool, bool] = field(init=False)
    currency: str = field(init=False)
    listing_sha256: str = field(init=False)

    def __post_init__(self) -> None:
        reference, self.currency = money(self.plan, "reference_price")
        self.listing_sha256 = sha256_hex(self.listing.content)  # once: every contract formed here names it
        self.band = trading.price_band(self.rules.rulebook, reference)
        # Makers go in without the band: a rule change may have narrowed it under resting orders.
        self.book = matching.Book(band=None, self_trade=trading.self_trade_policy(self.rules.rulebook))
        self.tiered = trading.tiered_sides(self.rules.rulebook, "quota")  # once: every fill asks

    def rest(self, makers: Sequence[Order]) -> None:
        """Resting orders of one side or both, as loaded: they cannot cross."""
        for maker in sorted(makers, key=lambda o: o.seq):
            self.book.submit(engine_order(maker))
            self.orders[maker.id] = maker
        self.book.set_band(self.band)

    def fees(self, notional: int, buyer_id: str, vendor_id: str) -> tuple[int, int]:
        buyer_tiered, vendor_tiered = self.tiered
        buyer_volume = self.volumes.get(buyer_id, 0) if buyer_tiered else 0
        vendor_volume = self.volumes.get(vendor_id, 0) if vendor_tiered else 0
        return trading.fee_for(self.rules.rulebook, "quota", notional, buyer_volume, vendor_volume)


@dataclass
class Traded:
    """What one order did to its book: rows to store and the journal to post, in that order."""

    contracts: list[Contract]
    trades: list[Trade]
    touched: list[Order]
    """The order and every resting order whose state it changed (all to be written)."""
    journal: list[Transfer]
    """Releases first (money back to available), then contract holds, then new holds."""


def worst_case(market: Market, order: Order) -> int:
    """The most a buy may spend: its limit (a market order: the band's top) times its quantity,
    and the buyer's fee on that."""
    worst_price = order.price if order.type == "limit" else market.band[1]
    assert worst_price is not None
    notional = worst_price * order.quantity
    return notional + market.fees(notional, order.participant_id, market.listing.vendor_id)[0]


def trade(market: Market, order: Order) -> Traded:
    """Match `order` (not yet in the book, `seq` set) and account for every fill. Raises the
    price band's refusal before anything changes."""
    now, rules, listing = market.now, market.rules, market.listing
    band = market.band
    if order.side == "buy":
        # The worst case is what the order may spend; the journal at the end holds it (or turns
        # it into escrow), so a buyer who cannot pay is refused there, all or nothing.
        order.held = worst_case(market, order)
    try:
        outcome = market.book.submit(engine_order(order))
    except matching.OrderRejected as rejected:
        order.held = 0
        raise refuse([Violation("trading.quota.price_band", f"The order is outside the price band {band[0]}–{band[1]} fen ({rejected.reason}).", "trading.toml: quota.price_band_bps")], rules) from None
    by_id = market.orders
    by_id[order.id] = order
    transfers: list[Transfer] = []
    formed: list[Contract] = []
    trades: list[Trade] = []
    consumed: dict[str, int] = {}
    confirm_window: timedelta = trading.settlement_windows(rules.rulebook)[0]
    for fill in outcome.fills:
        buy = by_id[fill.taker_id if fill.side == matching.Side.buy else fill.maker_id]
        sell = by_id[fill.maker_id if fill.side == matching.Side.buy else fill.taker_id]
        amount = fill.price * fill.quantity
        buy_remaining_before = buy.remaining
        held_left = buy.held - consumed.get(buy.id, 0)
        worst_price = buy.price if buy.type == "limit" and buy.price is not None else band[1]
        fee_share = held_left - worst_price * buy_remaining_before
        share = fee_share if fill.quantity == buy_remaining_before else fee_share * fill.quantity // buy_remaining_before
        buyer_fee, vendor_fee = market.fees(amount, buy.participant_id, sell.participant_id)
        buyer_fee = min(buyer_fee, max(0, share))
        consumed[buy.id] = consumed.get(buy.id, 0) + amount + buyer_fee
        buy.remaining -= fill.quantity
        sell.remaining -= fill.quantity
        terms = contracts.Terms(
            listing=listing, revision_content=listing.content, plan=market.plan, buyer_id=buy.participant_id, vendor_id=sell.participant_id,
            order_id=buy.id, quantity=fill.quantity, unit_price=fill.price, amount=amount, buyer_fee=buyer_fee, vendor_fee=vendor_fee,
            currency=market.currency, purpose=buy.purpose, rules_hash=rules.hash, listing_sha256=market.listing_sha256,
        )
        contract, holds = contracts.build(terms, market.signer, confirm_window=confirm_window, now=now)
        for party in {buy.participant_id, sell.participant_id}:  # as `volumes` counts a contract: once per party
            market.volumes[party] = market.volumes.get(party, 0) + amount
        formed.append(contract)
        transfers.extend(holds)
        trades.append(new_row(Trade, id=new_id("trd"), listing_id=listing.id, contract_id=contract.id, buy_order_id=buy.id, sell_order_id=sell.id,
                            price=fill.price, quantity=fill.quantity, seq=order.seq, at=now))

    order.status = "open" if outcome.rested else ("filled" if order.remaining == 0 else "cancelled")
    if order.status == "cancelled":
        order.reason = CANCEL_REASONS.get(outcome.cancelled or "", outcome.cancelled)
    for maker_id in outcome.cancelled_makers:
        maker = by_id[maker_id]
        maker.status, maker.reason = "cancelled", "self-trade prevention"  # the engine has taken it off already

    # Swap each touched buy hold for its contracts' escrow and, if it still rests, a smaller hold.
    touched_ids = {fill.taker_id for fill in outcome.fills} | {fill.maker_id for fill in outcome.fills} | set(outcome.cancelled_makers) | {order.id}
    swaps: list[Transfer] = []
    touched = sorted((by_id[i] for i in touched_ids), key=lambda o: o.seq)
    for current in touched:
        current.updated_at = now
        if current.remaining == 0 and current.status == "open":
            current.status = "filled"
        if current.side != "buy" or not current.held:
            continue
        left = current.held - consumed.get(current.id, 0)
        if current.id == order.id:
            # The new order holds nothing yet: it holds what is left if it rests.
            current.held = 0
            if current.status == "open" and left:
                swaps.append(hold_transfer(current, left, market.currency, listing.vendor_id))
            continue
        if not current.hold_id or (current.id not in consumed and current.status == "open"):
            continue  # untouched and still resting: its hold stays as it is
        release = release_transfer(current, "filled" if current.status == "filled" else (current.reason or "swapped for contracts"))
        assert release is not None
        swaps.append(release)
        if current.status == "open":
            swaps.append(hold_transfer(current, left, market.currency, listing.vendor_id))
    for current in touched:
        if current.status != "open":
            by_id.pop(current.id, None)
    releases = [t for t in swaps if t.phase is Phase.void]
    new_holds = [t for t in swaps if t.phase is Phase.pending]
    return Traded(contracts=formed, trades=trades, touched=touched, journal=[*releases, *transfers, *new_holds])
