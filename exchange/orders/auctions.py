"""Sealed-bid auctions of licences: the vendor opens one with a close time; bids (orders on an
auction plan) hold their worst case and stay hidden; at the close the pure `auction.clear`
picks the winners at one uniform price, and the outcome can be re-derived from the stored bids
and the rule the auction was opened under."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.errors import Forbidden, InvalidInput, InvalidTransition, NotFound
from exchange.core.ids import new_id
from exchange.orders import auction as sealed
from exchange.orders import contracts
from exchange.orders.schemas import AuctionIn, AuctionOut
from exchange.rulebook import trading
from exchange.rulebook.store import ActiveRules
from exchange.settlement.ledger import Ledger
from exchange.settlement.service import JournalIn, post_one
from exchange.tables import Auction, Listing, Order, Trade


async def open_auction(session: AsyncSession, rules: ActiveRules, caller: Caller, body: AuctionIn, now: datetime) -> AuctionOut:
    from exchange.orders.service import _money, listed_plan, lock_book

    listing, plan = await listed_plan(session, body.listing_id, body.plan_id)
    if listing.vendor_id != caller.id:
        raise Forbidden("Only the listing's vendor opens an auction of it.")
    if plan["kind"] != "auction":
        raise InvalidInput("plan_id: not an auction plan", errors=[{"field": "plan_id", "reason": f"{plan['kind']} plan"}])
    if body.closes_at.tzinfo is None:
        raise InvalidInput("closes_at: give a time zone", errors=[{"field": "closes_at", "reason": "time zone required"}])
    if body.closes_at <= now:
        raise InvalidInput("closes_at: must be in the future", errors=[{"field": "closes_at", "reason": "in the past"}])
    violations = trading.check_auction(rules.rulebook, now, body.closes_at)
    if violations:
        from exchange.orders.service import _refuse

        raise _refuse(violations, rules)
    await lock_book(session, listing.id, now)
    running = (
        await session.execute(sa.select(Auction.id).where(Auction.listing_id == listing.id, Auction.plan_id == body.plan_id, Auction.status == "open"))
    ).first()
    if running is not None:
        raise InvalidTransition(f"Auction {running[0]} of this plan is still open.")
    reserve, currency = _money(plan, "reserve_price")
    row = Auction(
        id=new_id("auc"), listing_id=listing.id, plan_id=body.plan_id, vendor_id=caller.id, licences=int(plan["licences"]),
        reserve=reserve, currency=currency, closes_at=body.closes_at, status="open", price_rule=trading.auction_price_rule(rules.rulebook),
        rulebook_hash=rules.hash, created_at=now,
    )
    session.add(row)
    await session.flush()
    return await to_out(session, row)


async def _open_for(session: AsyncSession, listing_id: str, plan_id: str) -> Auction:
    query = sa.select(Auction).where(Auction.listing_id == listing_id, Auction.plan_id == plan_id, Auction.status == "open")
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise InvalidTransition("No auction of this plan is open: the vendor opens one with POST /v1/auctions.")
    return row


async def ensure_bids_open(session: AsyncSession, auction_id: str, now: datetime) -> Auction:
    row = await session.get(Auction, auction_id)
    assert row is not None
    if row.status != "open" or now >= row.closes_at:
        raise InvalidTransition(f"Auction {auction_id} closed at {row.closes_at.isoformat()}; its bids are final.")
    return row


async def bid(session: AsyncSession, ledger: Ledger, rules: ActiveRules, listing: Listing, plan: dict[str, Any], order: Order, now: datetime) -> None:
    from exchange.orders.service import _hold_transfer, fees

    row = await _open_for(session, listing.id, order.plan_id)
    await ensure_bids_open(session, row.id, now)
    if order.price is None or order.price < row.reserve:
        raise InvalidInput(f"price: a bid must be at least the reserve, {row.reserve} fen", errors=[{"field": "price", "reason": "below the reserve"}])
    if order.quantity > row.licences:
        raise InvalidInput(f"quantity: the auction sells {row.licences} licence(s)", errors=[{"field": "quantity", "reason": "more than offered"}])
    notional = order.price * order.quantity
    buyer_fee, _ = await fees(session, rules, "auction", notional, order.participant_id, listing.vendor_id, now)
    order.auction_id, order.type, order.time_in_force = row.id, "limit", "gtc"
    order.expires_at = row.closes_at
    session.add(order)
    await session.flush()
    await post_one(session, ledger, JournalIn(transfers=[_hold_transfer(order, notional + buyer_fee, row.currency, listing.vendor_id)]), now)


async def close(session: AsyncSession, ledger: Ledger, rules: ActiveRules, auction_id: str, now: datetime, caller: Caller | None = None) -> AuctionOut:
    """Clear the auction: winners' holds become contracts at the uniform price, losers' holds go back."""
    from exchange.orders.service import _release_transfer, fees, lock_book

    row = await session.get(Auction, auction_id)
    if row is None:
        raise NotFound(f"No auction {auction_id!r}.")
    if caller is not None and not (caller.id == row.vendor_id or caller.has("operator")):
        raise Forbidden("Only the vendor or an operator closes an auction.")
    # The close takes the book's next number for its trades, as every trade does: a book's
    # trades are numbered in the order they are made (the order desk's windows rely on it).
    book = await lock_book(session, row.listing_id, now, next_seq=True)
    await session.refresh(row)
    if row.status != "open":
        raise InvalidTransition(f"Auction {row.id} is {row.status}.")
    if now < row.closes_at:
        raise InvalidTransition(f"Auction {row.id} closes at {row.closes_at.isoformat()}; bids stay sealed until then.")
    listing = await session.get(Listing, row.listing_id)
    assert listing is not None
    plan = next(p for p in listing.content["plans"] if p.get("id") == row.plan_id)
    bids = list((await session.execute(sa.select(Order).where(Order.auction_id == row.id, Order.status == "open").order_by(Order.seq))).scalars())
    result = sealed.clear(
        [sealed.Bid(id=b.id, bidder=b.participant_id, price=int(b.price or 0), seq=b.seq, quantity=b.quantity) for b in bids],
        row.licences, row.reserve, row.price_rule,
    )
    by_id = {b.id: b for b in bids}
    releases, holds = [], []
    for bid_id, won in result.winners:
        order = by_id[bid_id]
        assert result.price is not None
        amount = result.price * won
        buyer_fee, vendor_fee = await fees(session, rules, "auction", amount, order.participant_id, row.vendor_id, now)
        buyer_fee = min(buyer_fee, order.held - amount)  # never more than the bid held
        terms = contracts.Terms(
            listing=listing, revision_content=listing.content, plan=plan, buyer_id=order.participant_id, vendor_id=row.vendor_id,
            order_id=order.id, quantity=won, unit_price=result.price, amount=amount, buyer_fee=buyer_fee, vendor_fee=vendor_fee,
            currency=row.currency, purpose=order.purpose, rules_hash=row.rulebook_hash,
        )
        contract, contract_holds = await contracts.create(session, ledger, terms, confirm_window=trading.settlement_windows(rules.rulebook)[0], now=now)
        holds.extend(contract_holds)
        session.add(Trade(id=new_id("trd"), listing_id=row.listing_id, contract_id=contract.id, buy_order_id=order.id, price=result.price, quantity=won, seq=book.seq, at=now))
        order.remaining = order.quantity - won
        order.status, order.reason = "won", f"won {won} licence(s) at {result.price} fen"
    for bid_id in result.losers:
        by_id[bid_id].status, by_id[bid_id].reason = "lost", "outbid"
    for order in bids:
        release = _release_transfer(order, order.status)
        if release is not None:
            releases.append(release)
        order.updated_at = now
        session.add(order)
    if releases or holds:
        await post_one(session, ledger, JournalIn(transfers=[*releases, *holds]), now)
    row.status, row.price, row.closed_at = "closed", result.price, now
    session.add(row)
    await session.flush()
    return await to_out(session, row)


async def close_due(session: AsyncSession, ledger: Ledger, rules: ActiveRules, now: datetime) -> int:
    due = list((await session.execute(sa.select(Auction.id).where(Auction.status == "open", Auction.closes_at <= now))).scalars())
    for auction_id in due:
        await close(session, ledger, rules, auction_id, now)
    return len(due)


async def to_out(session: AsyncSession, row: Auction) -> AuctionOut:
    count = (await session.execute(sa.select(sa.func.count()).select_from(Order).where(Order.auction_id == row.id, Order.status.in_(("open", "won", "lost"))))).scalar_one()  # type: ignore[attr-defined]
    winners = None
    if row.status == "closed":
        won = (await session.execute(sa.select(Order).where(Order.auction_id == row.id, Order.status == "won").order_by(Order.seq))).scalars()
        winners = [{"order_id": o.id, "bidder": o.participant_id, "licences": o.quantity - o.remaining, "bid": o.price} for o in won]
    return AuctionOut(
        id=row.id, listing_id=row.listing_id, plan_id=row.plan_id, vendor_id=row.vendor_id, licences=row.licences, reserve=row.reserve,
        currency=row.currency, closes_at=row.closes_at, status=row.status, price_rule=row.price_rule, bids=int(count), price=row.price,
        winners=winners, rulebook_hash=row.rulebook_hash, created_at=row.created_at, closed_at=row.closed_at,
    )


async def get(session: AsyncSession, auction_id: str) -> AuctionOut:
    row = await session.get(Auction, auction_id)
    if row is None:
        raise NotFound(f"No auction {auction_id!r}.")
    return await to_out(session, row)
