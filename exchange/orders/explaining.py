"""Explain answers: every rule the exchange evaluated for a decision, with its inputs, outcome
and source, under the rule set that made the decision (found by the hash the decision recorded)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.errors import Forbidden, InvalidTransition, NotFound
from exchange.listings.schemas import ListingIn
from exchange.orders import contracts
from exchange.orders.schemas import ExplainOut, TraceOut
from exchange.participants.service import vendor_facts
from exchange.rulebook import explain, store, trading
from exchange.rulebook.store import RulebookCache
from exchange.tables import Contract, Listing, ListingEvent, ListingRevision, Order, Participant


def _traces(traces: list[explain.RuleTrace]) -> list[TraceOut]:
    return [TraceOut(**asdict(trace)) for trace in traces]


async def order_facts(session: AsyncSession, row: Order) -> trading.OrderFacts:
    """The facts an order was judged on, rebuilt from what was stored when it was placed."""
    from exchange.orders.service import reference_price

    listing = await session.get(Listing, row.listing_id)
    participant = await session.get(Participant, row.participant_id)
    assert listing is not None and participant is not None
    revision = await session.get(ListingRevision, (listing.id, row.revision))
    content = revision.content if revision is not None else listing.content
    plan = next((p for p in content.get("plans", []) if p.get("id") == row.plan_id), {})
    recent = (await session.execute(sa.select(sa.func.count()).select_from(Order).where(
        Order.participant_id == row.participant_id, Order.created_at > row.created_at - timedelta(minutes=1),
        Order.created_at <= row.created_at, Order.id != row.id))).scalar_one()
    return trading.OrderFacts(
        category=str(content.get("category", listing.category)), grade=str(content.get("grade", listing.grade)), plan_kind=row.plan_kind,
        side=row.side, order_type=row.type if row.plan_kind == "quota" else None, price_fen=row.price if row.plan_kind == "quota" else None,
        quantity=row.quantity, reference_price_fen=reference_price(plan), buyer_qualifications=frozenset(participant.qualifications),
        purpose=row.purpose, at=row.created_at, expires_at=row.expires_at if row.status == "rejected" else None, orders_last_minute=int(recent),
    )


async def order(session: AsyncSession, cache: RulebookCache, caller: Caller, order_id: str) -> ExplainOut:
    row = await session.get(Order, order_id)
    if row is None or not (row.participant_id == caller.id or caller.has("operator", "regulator")):
        raise NotFound(f"No order {order_id!r}.")
    rules = await store.by_hash(session, cache, row.rulebook_hash)
    traces = explain.explain_order(rules.rulebook, await order_facts(session, row))
    refused = any(t.outcome == explain.FAIL for t in traces)
    return ExplainOut(subject=f"order {row.id}", decision="refused" if refused else f"accepted ({row.status})", rulebook_hash=rules.hash,
                      rulebook_version=rules.version, judged_at=row.created_at, rules=_traces(traces))


async def listing_review(session: AsyncSession, cache: RulebookCache, caller: Caller, listing_id: str) -> ExplainOut:
    from exchange.listings.service import _load_visible

    listing = await _load_visible(session, caller, listing_id)
    if not (caller.sees_everything or caller.id == listing.vendor_id):
        raise Forbidden("A listing's review is explained to its vendor, operators and regulators.")
    query = (
        sa.select(ListingEvent).where(ListingEvent.listing_id == listing.id, ListingEvent.action.in_(("submit", "approve", "reject")))  # type: ignore[attr-defined]
        .order_by(ListingEvent.id.desc()).limit(1)  # type: ignore[union-attr]
    )
    event = (await session.execute(query)).scalar_one_or_none()
    if event is None:
        raise InvalidTransition(f"Listing {listing.id} has not been reviewed yet: submit it first.")
    rules = await store.by_hash(session, cache, event.rulebook_hash)
    revision = await session.get(ListingRevision, (listing.id, event.revision))
    assert revision is not None
    body = msgspec.convert({k: v for k, v in revision.content.items()}, ListingIn)
    traces = explain.explain_listing(rules.rulebook, body, await vendor_facts(session, listing.vendor_id))
    return ExplainOut(subject=f"listing {listing.id} revision {event.revision} ({event.action})", decision=event.to_status,
                      rulebook_hash=rules.hash, rulebook_version=rules.version, judged_at=event.at, rules=_traces(traces))


async def contract_fees(session: AsyncSession, cache: RulebookCache, caller: Caller, contract_id: str) -> ExplainOut:
    from exchange.orders.service import month_start

    contract = await contracts.load(session, caller, contract_id)
    rules = await store.by_hash(session, cache, str(contract.content["rules_hash"]))

    async def volume_before(participant_id: str, at: datetime) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(Contract.amount), 0)).where(
            sa.or_(Contract.buyer_id == participant_id, Contract.vendor_id == participant_id),
            Contract.created_at >= month_start(at), Contract.created_at < at, Contract.status != "refunded")
        return int((await session.execute(query)).scalar_one())

    buyer_volume = await volume_before(contract.buyer_id, contract.created_at)
    vendor_volume = await volume_before(contract.vendor_id, contract.created_at)
    traces = explain.explain_fees(rules.rulebook, contract.plan_kind, contract.amount, buyer_volume, vendor_volume)
    charged: dict[str, Any] = {"buyer_fee": contract.buyer_fee, "vendor_fee": contract.vendor_fee}
    return ExplainOut(subject=f"fees of contract {contract.id}", decision=f"buyer fee {charged['buyer_fee']}, vendor fee {charged['vendor_fee']}",
                      rulebook_hash=rules.hash, rulebook_version=rules.version, judged_at=contract.created_at, rules=_traces(traces))
