"""What a candidate rule set would do to trading: the open orders it would refuse and how the
fees of the last 30 days of contracts would change."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.rulebook import trading
from exchange.rulebook.model import Rulebook
from exchange.rulebook.schemas import FeeImpact, OrderImpact, ParticipantFees
from exchange.tables import Contract, Listing, Order, Participant

FEE_WINDOW_DAYS = 30


async def newly_refused_orders(session: AsyncSession, active: Rulebook, candidate: Rulebook, now: datetime) -> list[OrderImpact]:
    from exchange.orders.service import reference_price

    impacts: list[OrderImpact] = []
    orders = (await session.execute(sa.select(Order).where(Order.status == "open").order_by(Order.id))).scalars().all()
    listings: dict[str, Listing | None] = {}
    buyers: dict[str, frozenset[str]] = {}
    for order in orders:
        if order.listing_id not in listings:
            listings[order.listing_id] = await session.get(Listing, order.listing_id)
        listing = listings[order.listing_id]
        if listing is None:
            continue
        if order.participant_id not in buyers:
            participant = await session.get(Participant, order.participant_id)
            buyers[order.participant_id] = frozenset(participant.qualifications if participant else [])
        plan = next((p for p in listing.content.get("plans", []) if p.get("id") == order.plan_id), {})
        # Judged as if placed now: sessions, bands, access, sizes; the rate limit is not re-judged.
        facts = trading.OrderFacts(
            category=listing.category, grade=listing.grade, plan_kind=order.plan_kind, side=order.side,
            order_type=order.type if order.plan_kind == "quota" else None, price_fen=order.price, quantity=order.remaining,
            reference_price_fen=reference_price(plan), buyer_qualifications=buyers[order.participant_id], purpose=order.purpose,
            at=now, expires_at=order.expires_at if order.expires_at is None or order.expires_at > now else None, orders_last_minute=0,
        )
        before = {v.rule for v in trading.check_order(active, facts)}
        new = [v for v in trading.check_order(candidate, facts) if v.rule not in before]
        if new:
            impacts.append(OrderImpact(
                order_id=order.id, listing_id=order.listing_id, participant_id=order.participant_id, side=order.side,
                price=order.price, remaining=order.remaining, violations=[msgspec.to_builtins(v) for v in new],
            ))
    return impacts


async def fee_changes(session: AsyncSession, active: Rulebook, candidate: Rulebook, now: datetime) -> FeeImpact:
    """Each contract of the window priced again under both sets; volume tiers use each party's
    volume over the window as it stands now."""
    since = now - timedelta(days=FEE_WINDOW_DAYS)
    rows = (await session.execute(sa.select(Contract).where(Contract.created_at >= since, Contract.status != "refunded"))).scalars().all()
    volumes: dict[tuple[str, str], int] = {}
    for row in rows:
        volumes[("buyer", row.buyer_id)] = volumes.get(("buyer", row.buyer_id), 0) + row.amount
        volumes[("vendor", row.vendor_id)] = volumes.get(("vendor", row.vendor_id), 0) + row.amount
    totals = {"ba": 0, "bc": 0, "va": 0, "vc": 0}
    per: dict[str, list[int]] = {}
    for row in rows:
        buyer_volume, vendor_volume = volumes[("buyer", row.buyer_id)], volumes[("vendor", row.vendor_id)]
        buyer_a, vendor_a = trading.fee_for(active, row.plan_kind, row.amount, buyer_volume, vendor_volume)
        buyer_c, vendor_c = trading.fee_for(candidate, row.plan_kind, row.amount, buyer_volume, vendor_volume)
        totals["ba"] += buyer_a
        totals["bc"] += buyer_c
        totals["va"] += vendor_a
        totals["vc"] += vendor_c
        for participant, before, after in ((row.buyer_id, buyer_a, buyer_c), (row.vendor_id, vendor_a, vendor_c)):
            sums = per.setdefault(participant, [0, 0])
            sums[0] += before
            sums[1] += after
    changed = [ParticipantFees(participant_id=p, active=a, candidate=c, delta=c - a) for p, (a, c) in sorted(per.items()) if a != c]
    return FeeImpact(
        days=FEE_WINDOW_DAYS, contracts=len(rows), buyer_fees_active=totals["ba"], buyer_fees_candidate=totals["bc"],
        vendor_fees_active=totals["va"], vendor_fees_candidate=totals["vc"], by_participant=changed,
    )


async def replayed_orders(session: AsyncSession, candidate: Rulebook, now: datetime) -> list[OrderImpact]:
    """Accepted orders of the window judged again, as placed, by the candidate set."""
    from exchange.orders.explaining import order_facts

    since = now - timedelta(days=FEE_WINDOW_DAYS)
    query = sa.select(Order).where(Order.created_at >= since, Order.status != "rejected").order_by(Order.created_at, Order.id)
    impacts = []
    for order in (await session.execute(query)).scalars().all():
        violations = trading.check_order(candidate, await order_facts(session, order))
        if violations:
            impacts.append(OrderImpact(
                order_id=order.id, listing_id=order.listing_id, participant_id=order.participant_id, side=order.side,
                price=order.price, remaining=order.remaining, violations=[msgspec.to_builtins(v) for v in violations],
            ))
    return impacts
