"""Subscriptions renew: when a term ends, a new signed contract for the next period is formed
at the plan's current price and paid like any other (escrow, then settlement), unless the buyer
cancelled the renewal, the plan is gone, or the buyer cannot pay."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.errors import Forbidden, InvalidTransition, TransferRefused
from exchange.orders import contracts
from exchange.orders.schemas import ContractOut
from exchange.rulebook import trading
from exchange.rulebook.store import ActiveRules
from exchange.settlement.ledger import Ledger
from exchange.settlement.service import JournalIn, post_one
from exchange.tables import Contract, Listing


async def cancel(session: AsyncSession, caller: Caller, contract_id: str, now: datetime) -> ContractOut:
    contract = await contracts.load(session, caller, contract_id, for_update=True)
    if caller.id != contract.buyer_id:
        raise Forbidden("Only the buyer cancels a subscription's renewal.")
    if not contract.renew:
        raise InvalidTransition(f"Contract {contract.id} does not renew.")
    contract.renew, contract.updated_at = False, now
    session.add(contract)
    await session.flush()
    return contracts.to_out(contract)


async def renew_due(session: AsyncSession, ledger: Ledger, rules: ActiveRules, now: datetime, limit: int = 200) -> int:
    from exchange.orders.service import _money, fees, lock_book

    query = sa.select(Contract).where(Contract.renew.is_(True), Contract.valid_until <= now).order_by(Contract.valid_until).limit(limit)  # type: ignore[attr-defined, operator]
    renewed = 0
    for previous in list((await session.execute(query)).scalars()):
        previous.renew = False  # this term is dealt with, whatever happens next
        listing = await session.get(Listing, previous.listing_id)
        plan_id = previous.content["plan"].get("id")
        plan = next((p for p in (listing.content.get("plans", []) if listing else []) if p.get("id") == plan_id), None)
        contracts._lapse_if_due(previous, now)
        if listing is None or listing.status != "listed" or plan is None or plan.get("kind") != "subscription":
            previous.end_reason = "not renewed: the subscription is no longer offered"
            session.add(previous)
            continue
        await lock_book(session, listing.id, now)
        unit_price, currency = _money(plan, "price")
        periods = int(previous.content["quantity"])
        amount = unit_price * periods
        buyer_fee, vendor_fee = await fees(session, rules, "subscription", amount, previous.buyer_id, previous.vendor_id, now)
        terms = contracts.Terms(
            listing=listing, revision_content=listing.content, plan=plan, buyer_id=previous.buyer_id, vendor_id=previous.vendor_id,
            order_id=previous.order_id, quantity=periods, unit_price=unit_price, amount=amount, buyer_fee=buyer_fee, vendor_fee=vendor_fee,
            currency=currency, purpose=previous.content.get("purpose"), rules_hash=rules.hash,
        )
        try:
            async with session.begin_nested():  # a buyer who cannot pay leaves everything else of the sweep standing
                contract, holds = await contracts.create(
                    session, ledger, terms, confirm_window=trading.settlement_windows(rules.rulebook)[0], now=now,
                    starts_at=contracts.valid_until(previous), renews=previous.id,
                )
                if holds:
                    await post_one(session, ledger, JournalIn(transfers=holds), now)
        except TransferRefused as refused:
            previous.end_reason = f"not renewed ({refused.code}): {refused.detail}"
        else:
            renewed += 1
        session.add(previous)
    await session.flush()
    return renewed
