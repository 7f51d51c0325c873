"""Negotiated plans (协议): a buyer's request for quote, private offers and counter-offers
either way, and acceptance that forms the contract. Every step is signed by the exchange and
names the SHA-256 of the step before it, so the road from request to agreement can be shown
and checked later."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.canonical import canonical_bytes
from exchange.core.errors import Conflict, Forbidden, InvalidInput, InvalidTransition, NotFound
from exchange.core.ids import new_id
from exchange.orders import contracts
from exchange.orders.schemas import DealTerms, NegotiationIn, NegotiationOut, NegotiationPage, OfferIn, StepOut
from exchange.rulebook import trading
from exchange.rulebook.store import ActiveRules
from exchange.settlement.ledger import Ledger, millis
from exchange.settlement.service import JournalIn, post_one
from exchange.tables import Listing, Negotiation, NegotiationStep

OFFER_LIFETIME = timedelta(days=7)
PROPOSALS = ("request", "offer", "counter")
PAGE_MAX = 100


def _expiry(given: datetime | None, now: datetime) -> datetime:
    if given is None:
        return now + OFFER_LIFETIME
    if given.tzinfo is None:
        raise InvalidInput("expires_at: give a time zone", errors=[{"field": "expires_at", "reason": "time zone required"}])
    if given <= now:
        raise InvalidInput("expires_at: must be in the future", errors=[{"field": "expires_at", "reason": "in the past"}])
    return given


async def _steps(session: AsyncSession, negotiation_id: str) -> list[NegotiationStep]:
    query = sa.select(NegotiationStep).where(NegotiationStep.negotiation_id == negotiation_id).order_by(NegotiationStep.seq)
    return list((await session.execute(query)).scalars())


async def _add_step(
    session: AsyncSession, ledger: Ledger, negotiation: Negotiation, actor: Caller, kind: str, body: dict[str, Any], now: datetime
) -> NegotiationStep:
    previous = await _steps(session, negotiation.id)
    content = {
        "type": "negotiation_step",
        "negotiation_id": negotiation.id,
        "listing_id": negotiation.listing_id,
        "plan_id": negotiation.plan_id,
        "buyer_id": negotiation.buyer_id,
        "vendor_id": negotiation.vendor_id,
        "seq": len(previous) + 1,
        "actor_id": actor.id,
        "kind": kind,
        "previous_sha256": hashlib.sha256(previous[-1].canonical).hexdigest() if previous else None,
        "created_at": millis(now),
        **body,
    }
    canonical = canonical_bytes(content)
    signer = await ledger.active_signer(session, now)
    step = NegotiationStep(
        negotiation_id=negotiation.id, seq=content["seq"], actor_id=actor.id, kind=kind, content=content, canonical=canonical,
        key_id=signer.key_id, signature=signer.sign(canonical), created_at=now,
    )
    session.add(step)
    negotiation.updated_at = now
    session.add(negotiation)
    await session.flush()
    return step


def _terms(terms: DealTerms) -> dict[str, Any]:
    return {k: v for k, v in msgspec.to_builtins(terms).items() if v is not None}


async def request(session: AsyncSession, ledger: Ledger, rules: ActiveRules, caller: Caller, body: NegotiationIn, now: datetime) -> NegotiationOut:
    from exchange.orders.service import listed_plan

    listing, plan = await listed_plan(session, body.listing_id, body.plan_id)
    if plan["kind"] != "negotiated":
        raise InvalidInput("plan_id: not a negotiated plan", errors=[{"field": "plan_id", "reason": f"{plan['kind']} plan"}])
    if caller.id == listing.vendor_id or not caller.has("buyer"):
        raise Forbidden("Requests for quote come from buyers other than the listing's vendor.")
    negotiation = Negotiation(
        id=new_id("ngt"), listing_id=listing.id, plan_id=body.plan_id, buyer_id=caller.id, vendor_id=listing.vendor_id,
        status="open", purpose=body.purpose, created_at=now, updated_at=now,
    )
    session.add(negotiation)
    await session.flush()
    await _add_step(session, ledger, negotiation, caller, "request",
                    {"terms": _terms(body.terms), "expires_at": millis(_expiry(body.expires_at, now)), "purpose": body.purpose}, now)
    return await to_out(session, negotiation)


async def _load(session: AsyncSession, caller: Caller, negotiation_id: str, *, for_update: bool = False) -> Negotiation:
    negotiation = await session.get(Negotiation, negotiation_id, with_for_update=for_update and session.bind.dialect.name == "postgresql")
    # Private to its two parties (and the exchange's operators and regulators).
    if negotiation is None or not (caller.id in (negotiation.buyer_id, negotiation.vendor_id) or caller.has("operator", "regulator")):
        raise NotFound(f"No negotiation {negotiation_id!r}.")
    return negotiation


def _party(caller: Caller, negotiation: Negotiation) -> None:
    if caller.id not in (negotiation.buyer_id, negotiation.vendor_id):
        raise Forbidden("Only the buyer and the vendor take part in a negotiation.")


def _open(negotiation: Negotiation) -> None:
    if negotiation.status != "open":
        raise InvalidTransition(f"Negotiation {negotiation.id} is {negotiation.status}.")


async def propose(session: AsyncSession, ledger: Ledger, caller: Caller, negotiation_id: str, body: OfferIn, now: datetime) -> NegotiationOut:
    negotiation = await _load(session, caller, negotiation_id, for_update=True)
    _party(caller, negotiation)
    _open(negotiation)
    kind = "offer" if caller.id == negotiation.vendor_id else "counter"
    await _add_step(session, ledger, negotiation, caller, kind, {"terms": _terms(body.terms), "expires_at": millis(_expiry(body.expires_at, now))}, now)
    return await to_out(session, negotiation)


async def accept(session: AsyncSession, ledger: Ledger, rules: ActiveRules, caller: Caller, negotiation_id: str, seq: int, now: datetime) -> NegotiationOut:
    """The party that did not make the latest proposal accepts it, before it expires: the
    contract is formed and the buyer's money goes into escrow, all or nothing."""
    from exchange.orders.service import _licences_left, _refuse, fees, lock_book, reference_price

    negotiation = await _load(session, caller, negotiation_id, for_update=True)
    _party(caller, negotiation)
    _open(negotiation)
    steps = await _steps(session, negotiation.id)
    proposals = [s for s in steps if s.kind in PROPOSALS]
    latest = proposals[-1]
    if seq != latest.seq:
        raise InvalidTransition(f"Only the latest proposal (step {latest.seq}) can be accepted; step {seq} was superseded or is not a proposal.")
    if latest.actor_id == caller.id:
        raise Forbidden("A party cannot accept its own proposal.")
    if millis(now) >= int(latest.content["expires_at"]):
        raise InvalidTransition(f"Step {latest.seq} expired at {datetime.fromtimestamp(latest.content['expires_at'] / 1000).isoformat()}Z; it can no longer be accepted.")

    listing = await session.get(Listing, negotiation.listing_id)
    assert listing is not None
    await lock_book(session, listing.id, now)
    if listing.status != "listed":
        raise InvalidTransition(f"Listing {listing.id} is {listing.status}.")
    plan = next((p for p in listing.content.get("plans", []) if p.get("id") == negotiation.plan_id), None)
    if plan is None:
        raise InvalidTransition("The negotiated plan is no longer offered.")
    terms = latest.content["terms"]
    from exchange.tables import Participant

    buyer = await session.get(Participant, negotiation.buyer_id)
    assert buyer is not None
    facts = trading.OrderFacts(
        category=listing.category, grade=listing.grade, plan_kind="negotiated", side="buy", order_type=None, price_fen=None,
        quantity=int(terms["quantity"]), reference_price_fen=reference_price(plan), buyer_qualifications=frozenset(buyer.qualifications),
        purpose=negotiation.purpose, at=now, expires_at=None, orders_last_minute=0,
    )
    violations = trading.check_order(rules.rulebook, facts)
    if violations:
        raise _refuse(violations, rules)
    left = await _licences_left(session, listing)
    if left is not None and int(terms["quantity"]) > left:
        raise Conflict(f"Only {left} licence(s) of listing {listing.id} remain.", remaining_licences=left)

    amount = int(terms["amount"])
    buyer_fee, vendor_fee = await fees(session, rules, "negotiated", amount, negotiation.buyer_id, negotiation.vendor_id, now)
    licence = dict(listing.content.get("licence", {}))
    for field in ("duration_days", "purposes", "territory"):
        if field in terms:
            licence[field] = terms[field]
    agreed = contracts.Terms(
        listing=listing, revision_content={**listing.content, "licence": licence}, plan={**plan, "negotiation_id": negotiation.id,
        "agreed_step_sha256": hashlib.sha256(latest.canonical).hexdigest()}, buyer_id=negotiation.buyer_id, vendor_id=negotiation.vendor_id,
        order_id=None, quantity=int(terms["quantity"]), unit_price=amount // int(terms["quantity"]), amount=amount,
        buyer_fee=buyer_fee, vendor_fee=vendor_fee, currency=str(terms.get("currency", "CNY")), purpose=negotiation.purpose, rules_hash=rules.hash,
    )
    contract, holds = await contracts.create(session, ledger, agreed, confirm_window=trading.settlement_windows(rules.rulebook)[0], now=now)
    if holds:
        await post_one(session, ledger, JournalIn(transfers=holds), now)  # a buyer who cannot pay leaves the negotiation open
    negotiation.status, negotiation.contract_id = "agreed", contract.id
    await _add_step(session, ledger, negotiation, caller, "accept", {"accepted_seq": latest.seq, "contract_id": contract.id}, now)
    return await to_out(session, negotiation)


async def close(session: AsyncSession, ledger: Ledger, caller: Caller, negotiation_id: str, reason: str, now: datetime) -> NegotiationOut:
    negotiation = await _load(session, caller, negotiation_id, for_update=True)
    _party(caller, negotiation)
    _open(negotiation)
    negotiation.status = "closed"
    await _add_step(session, ledger, negotiation, caller, "close", {"reason": reason}, now)
    return await to_out(session, negotiation)


async def to_out(session: AsyncSession, negotiation: Negotiation) -> NegotiationOut:
    steps = [
        StepOut(seq=s.seq, actor_id=s.actor_id, kind=s.kind, content=s.content, canonical=base64.b64encode(s.canonical).decode(),
                key_id=s.key_id, signature=s.signature, created_at=s.created_at)
        for s in await _steps(session, negotiation.id)
    ]
    return NegotiationOut(
        id=negotiation.id, listing_id=negotiation.listing_id, plan_id=negotiation.plan_id, buyer_id=negotiation.buyer_id,
        vendor_id=negotiation.vendor_id, status=negotiation.status, purpose=negotiation.purpose, contract_id=negotiation.contract_id,
        steps=steps, created_at=negotiation.created_at, updated_at=negotiation.updated_at,
    )


async def get(session: AsyncSession, caller: Caller, negotiation_id: str) -> NegotiationOut:
    return await to_out(session, await _load(session, caller, negotiation_id))


async def page(session: AsyncSession, caller: Caller, status: str | None) -> NegotiationPage:
    query = sa.select(Negotiation).order_by(Negotiation.updated_at.desc()).limit(PAGE_MAX)  # type: ignore[attr-defined]
    if not caller.has("operator", "regulator"):
        query = query.where(sa.or_(Negotiation.buyer_id == caller.id, Negotiation.vendor_id == caller.id))
    if status is not None:
        query = query.where(Negotiation.status == status)
    return NegotiationPage(items=[await to_out(session, n) for n in (await session.execute(query)).scalars()])
