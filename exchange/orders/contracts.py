"""Contracts: the signed terms of every fill, their escrow, and their settlement.

A contract's money sits in the buyer's escrow as two pending ledger transfers: the price
(buyer → vendor) and the buyer's fee (buyer → exchange fees). Confirmation, by the buyer or
automatically when the window passes, settles it in one balanced journal: both holds posted and
the vendor's fee paid to the exchange; then a signed transaction certificate (交易凭证) is
logged. A dispute freezes the holds until an operator releases or refunds them."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.canonical import canonical_bytes, sha256_hex
from exchange.core.errors import Forbidden, InvalidTransition, NotFound
from exchange.core.ids import new_id
from exchange.orders.schemas import ContractOut, ContractPage, EntitlementOut
from exchange.rulebook.store import ActiveRules, RulebookCache
from exchange.settlement import posting
from exchange.settlement.entries import CertificateEntry
from exchange.settlement.ledger import Ledger, millis
from exchange.settlement.posting import Phase, References, Transfer, TransferKind
from exchange.settlement.service import JournalIn, post_one
from exchange.settlement.signing import Signer
from exchange.tables import Contract, new_row

CONTRACT_VERSION = 1
PAGE_MAX = 100


class Terms:
    """What a fill or acceptance agreed; becomes a signed contract."""

    def __init__(
        self, *, listing: Any, revision_content: dict[str, Any], plan: dict[str, Any], buyer_id: str, vendor_id: str,
        order_id: str | None, quantity: int, unit_price: int, amount: int, buyer_fee: int, vendor_fee: int,
        currency: str, purpose: str | None, rules_hash: str, listing_sha256: str | None = None,
    ) -> None:
        self.listing = listing
        self.listing_sha256 = listing_sha256
        """The hash of `revision_content`, when the caller has it (a book signs many contracts of one revision)."""
        self.revision_content = revision_content
        self.plan = plan
        self.buyer_id = buyer_id
        self.vendor_id = vendor_id
        self.order_id = order_id
        self.quantity = quantity
        self.unit_price = unit_price
        self.amount = amount
        self.buyer_fee = buyer_fee
        self.vendor_fee = vendor_fee
        self.currency = currency
        self.purpose = purpose
        self.rules_hash = rules_hash


def hold_transfers(contract_id: str, terms: Terms) -> list[Transfer]:
    """The escrow of a contract: the price and the buyer's fee held from the buyer."""
    refs = References(contract=contract_id, order=terms.order_id, listing=terms.listing.id)
    buyer = posting.available(terms.buyer_id, terms.currency)
    holds = []
    if terms.amount:
        holds.append(Transfer(
            id=f"{contract_id}.pay", kind=TransferKind.hold, phase=Phase.pending, debit_account=buyer,
            credit_account=posting.available(terms.vendor_id, terms.currency), amount=terms.amount, currency=terms.currency, references=refs,
        ))
    if terms.buyer_fee:
        holds.append(Transfer(
            id=f"{contract_id}.buyer-fee", kind=TransferKind.hold, phase=Phase.pending, debit_account=buyer,
            credit_account=posting.fees(terms.currency), amount=terms.buyer_fee, currency=terms.currency, references=refs,
        ))
    return holds


async def create(
    session: AsyncSession, ledger: Ledger, terms: Terms, *, confirm_window: timedelta, now: datetime,
    starts_at: datetime | None = None, renews: str | None = None,
) -> tuple[Contract, list[Transfer]]:
    """Sign the terms and return the contract with the hold transfers the caller must post in
    the same journal as whatever else the fill moves. A renewal starts when the term it
    continues ends."""
    contract, holds = build(terms, await ledger.active_signer(session, now), confirm_window=confirm_window, now=now, starts_at=starts_at, renews=renews)
    session.add(contract)
    return contract, holds


def build(
    terms: Terms, signer: Signer, *, confirm_window: timedelta, now: datetime, starts_at: datetime | None = None, renews: str | None = None,
) -> tuple[Contract, list[Transfer]]:
    """The signed contract of `terms` and its escrow transfers, without storing either."""
    contract_id = new_id("ctr")
    starts_at = starts_at or now
    licence = terms.revision_content.get("licence", {})
    valid_days = int(licence.get("duration_days", 365))
    if terms.plan.get("kind") == "subscription":
        valid_days = int(terms.plan.get("period_days", 30)) * terms.quantity
    content = {
        "type": "contract",
        "v": CONTRACT_VERSION,
        "id": contract_id,
        "listing_id": terms.listing.id,
        "revision": terms.listing.revision,
        "category": terms.listing.category,
        "grade": terms.listing.grade,
        "listing_sha256": terms.listing_sha256 or sha256_hex(terms.revision_content),
        "title": terms.revision_content.get("title"),
        "plan": terms.plan,
        "buyer_id": terms.buyer_id,
        "vendor_id": terms.vendor_id,
        "order_id": terms.order_id,
        "quantity": terms.quantity,
        "unit_price": terms.unit_price,
        "amount": terms.amount,
        "currency": terms.currency,
        "buyer_fee": terms.buyer_fee,
        "vendor_fee": terms.vendor_fee,
        "licence": licence,
        "purpose": terms.purpose,
        "rules_hash": terms.rules_hash,
        "created_at": millis(now),
        "confirm_by": millis(now + confirm_window),
        "valid_from": millis(starts_at),
        "valid_until": millis(starts_at + timedelta(days=valid_days)),
        "renews": renews,
    }
    canonical = canonical_bytes(content)
    holds = hold_transfers(contract_id, terms)
    contract = new_row(
        Contract, id=contract_id, listing_id=terms.listing.id, buyer_id=terms.buyer_id, vendor_id=terms.vendor_id, order_id=terms.order_id,
        plan_kind=str(terms.plan.get("kind")), amount=terms.amount, buyer_fee=terms.buyer_fee, vendor_fee=terms.vendor_fee,
        currency=terms.currency, status="awaiting_delivery", content=content, canonical=canonical, key_id=signer.key_id,
        signature=signer.sign(canonical), pay_hold_id=f"{contract_id}.pay" if terms.amount else None,
        fee_hold_id=f"{contract_id}.buyer-fee" if terms.buyer_fee else None, confirm_by=now + confirm_window,
        lifecycle="active", valid_until=starts_at + timedelta(days=valid_days), renew=terms.plan.get("kind") == "subscription",
        renews=renews, created_at=now, updated_at=now,
    )
    return contract, holds


def to_out(contract: Contract) -> ContractOut:
    return ContractOut(
        id=contract.id, status=contract.status, contract=contract.content, canonical=base64.b64encode(contract.canonical).decode(),
        key_id=contract.key_id, signature=contract.signature, confirm_by=contract.confirm_by, dispute_reason=contract.dispute_reason,
        certificate=contract.certificate, certificate_signature=contract.certificate_signature,
        certificate_index=contract.certificate_index, lifecycle=contract.lifecycle, valid_until=valid_until(contract),
        ended_at=contract.ended_at, end_reason=contract.end_reason, amends=contract.amends, renew=contract.renew, renews=contract.renews,
        created_at=contract.created_at, updated_at=contract.updated_at,
    )


def valid_until(contract: Contract) -> datetime:
    if contract.valid_until is not None:
        return contract.valid_until
    return datetime.fromtimestamp(int(contract.content["valid_until"]) / 1000, UTC)


def _end(contract: Contract, lifecycle: str, reason: str, now: datetime) -> None:
    contract.lifecycle, contract.ended_at, contract.end_reason, contract.updated_at = lifecycle, now, reason, now


def _lapse_if_due(contract: Contract, now: datetime) -> None:
    """A contract past its term is expired whether or not the sweep has been by yet."""
    if contract.lifecycle == "active" and valid_until(contract) <= now:
        _end(contract, "expired", "its term ended", valid_until(contract))


async def terminate(session: AsyncSession, ledger: Ledger, caller: Caller, contract_id: str, reason: str, now: datetime) -> ContractOut:
    """End a contract early where its licence allows (operators always may). Money still in
    escrow goes back to the buyer: what was never delivered is not paid for."""
    contract = await load(session, caller, contract_id, for_update=True)
    _lapse_if_due(contract, now)
    if contract.lifecycle != "active":
        raise InvalidTransition(f"Contract {contract.id} is {contract.lifecycle}; only an active contract can be terminated.")
    allowed = str(contract.content.get("licence", {}).get("termination", "either_party"))
    may = caller.has("operator") or (caller.id == contract.buyer_id and allowed in ("either_party", "buyer_only")) or (
        caller.id == contract.vendor_id and allowed == "either_party"
    )
    if not may:
        raise Forbidden(f"The licence allows termination by: {allowed.replace('_', ' ')} (and operators).")
    if contract.status in ("awaiting_delivery", "disputed"):
        await refund(session, ledger, contract, now, reason=f"terminated before settlement: {reason}")
    _end(contract, "terminated", f"terminated by {caller.id}: {reason}", now)
    session.add(contract)
    await session.flush()
    return to_out(contract)


async def token(session: AsyncSession, ledger: Ledger, rules: ActiveRules, caller: Caller, contract_id: str, now: datetime) -> EntitlementOut:
    """A fresh short-lived entitlement token for the buyer of an active contract."""
    from exchange.orders import entitlements

    contract = await load(session, caller, contract_id)
    if caller.id != contract.buyer_id:
        raise Forbidden("Only the buyer holds the entitlement.")
    _lapse_if_due(contract, now)
    if contract.lifecycle != "active" or contract.status == "refunded":
        state = contract.lifecycle if contract.lifecycle != "active" else contract.status
        raise InvalidTransition(f"Contract {contract.id} is {state}: no token is issued for it.")
    signer = await ledger.active_signer(session, now)
    expires = min(valid_until(contract), now + timedelta(minutes=rules.rulebook.settlement.entitlement_token_minutes))
    licence = contract.content.get("licence", {})
    scope = {
        "plan_kind": contract.plan_kind,
        "quantity": contract.content["quantity"],
        "purposes": licence.get("purposes", []),
        "territory": licence.get("territory", "CN"),
        "purpose": contract.content.get("purpose"),
    }
    jwt = entitlements.issue(
        signer, contract_id=contract.id, listing_id=contract.listing_id, buyer_id=contract.buyer_id, vendor_id=contract.vendor_id,
        scope=scope, issued_at=now, expires_at=expires,
    )
    return EntitlementOut(token=jwt, key_id=signer.key_id, expires_at=expires)


async def expire_due(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    query = sa.select(Contract).where(Contract.lifecycle == "active", Contract.valid_until <= now).limit(limit)  # type: ignore[operator]
    due = list((await session.execute(query)).scalars())
    for contract in due:
        _lapse_if_due(contract, now)
        session.add(contract)
    return len(due)


def _sees(caller: Caller, contract: Contract) -> bool:
    return caller.id in (contract.buyer_id, contract.vendor_id) or caller.has("operator", "regulator")


_CONTRACTS: sa.Table = Contract.__table__  # type: ignore[attr-defined]
BY_ID = sa.select(*_CONTRACTS.columns).where(_CONTRACTS.c.id == sa.bindparam("contract_id"))
"""One contract's row, for `seen` (a read that needs no session)."""


def seen(caller: Caller, rows: Sequence[Sequence[Any]], contract_id: str) -> Contract:
    """The contract `BY_ID` found, as `load` gives it (not in any session: to read, not change)."""
    return _visible(caller, new_row(Contract, **dict(zip(_CONTRACTS.columns.keys(), rows[0], strict=True))) if rows else None, contract_id)


def _visible(caller: Caller, contract: Contract | None, contract_id: str) -> Contract:
    # A contract is visible to its parties only (and to operators and regulators): to anyone
    # else it does not exist.
    if contract is None or not _sees(caller, contract):
        raise NotFound(f"No contract {contract_id!r}.")
    return contract


async def load(session: AsyncSession, caller: Caller, contract_id: str, *, for_update: bool = False) -> Contract:
    contract = await session.get(Contract, contract_id, with_for_update=for_update and session.bind.dialect.name == "postgresql")
    return _visible(caller, contract, contract_id)


async def page(session: AsyncSession, caller: Caller, status: str | None, cursor: str | None, limit: int) -> ContractPage:
    query = sa.select(Contract).order_by(Contract.id.desc()).limit(limit + 1)  # type: ignore[attr-defined]
    if not caller.has("operator", "regulator"):
        query = query.where(sa.or_(Contract.buyer_id == caller.id, Contract.vendor_id == caller.id))
    if status is not None:
        query = query.where(Contract.status == status)
    if cursor is not None:
        query = query.where(Contract.id < cursor)
    rows = list((await session.execute(query)).scalars())
    items = rows[:limit]
    return ContractPage(items=[to_out(c) for c in items], next_cursor=items[-1].id if len(rows) > limit else None)


async def settle(session: AsyncSession, ledger: Ledger, contract: Contract, now: datetime, *, reason: str) -> Contract:
    """Escrow to the vendor, fees to the exchange, in one balanced journal; then the signed
    transaction certificate goes into the log."""
    refs = References(contract=contract.id, listing=contract.listing_id, note=reason[:200])
    transfers = []
    if contract.pay_hold_id:
        transfers.append(Transfer(id=f"{contract.id}.settle", kind=TransferKind.settle, phase=Phase.post, pending_id=contract.pay_hold_id, references=refs))
    if contract.fee_hold_id:
        transfers.append(Transfer(id=f"{contract.id}.buyer-fee.settle", kind=TransferKind.fee, phase=Phase.post, pending_id=contract.fee_hold_id, references=refs))
    if contract.vendor_fee:
        transfers.append(Transfer(
            id=f"{contract.id}.vendor-fee", kind=TransferKind.fee, debit_account=posting.available(contract.vendor_id, contract.currency),
            credit_account=posting.fees(contract.currency), amount=contract.vendor_fee, currency=contract.currency, references=refs,
        ))
    shares = await fee_shares(session, contract)
    for share, recipient, amount in shares:
        transfers.append(Transfer(
            id=f"{contract.id}.share.{share}", kind=TransferKind.fee, debit_account=posting.fees(contract.currency),
            credit_account=posting.available(recipient, contract.currency), amount=amount, currency=contract.currency,
            references=References(contract=contract.id, listing=contract.listing_id, note=f"fee share: {share}"),
        ))
    indexes: list[int] = []
    if transfers:
        journal = await post_one(session, ledger, JournalIn(transfers=transfers), now)
        indexes = [entry["index"] for entry in journal.entries]
    certificate = {
        "type": "transaction_certificate",
        "contract_id": contract.id,
        "contract_sha256": sha256_hex(contract.content),
        "listing_id": contract.listing_id,
        "buyer_id": contract.buyer_id,
        "vendor_id": contract.vendor_id,
        "amount": contract.amount,
        "currency": contract.currency,
        "buyer_fee": contract.buyer_fee,
        "vendor_fee": contract.vendor_fee,
        "fee_shares": [{"share": share, "participant_id": recipient, "amount": amount} for share, recipient, amount in shares],
        "settlement_entries": indexes,
        "settled_at": millis(now),
        "confirmed_by": reason,
    }
    signer = await ledger.active_signer(session, now)
    signature = signer.sign(canonical_bytes(certificate))
    [appended] = await ledger.append(session, [CertificateEntry(index=-1, at=millis(now), certificate=certificate, key_id=signer.key_id, signature=signature)], now)
    contract.status = "settled"
    contract.certificate, contract.certificate_signature, contract.certificate_index = certificate, signature, appended.index
    contract.updated_at = now
    session.add(contract)
    await session.flush()
    return contract


_rules_cache = RulebookCache()


async def fee_shares(session: AsyncSession, contract: Contract, total: int | None = None) -> list[tuple[str, str, int]]:
    """The shares of the contract's fees (or of `total` fees of one of its bills) for the
    sponsor and the public body, by the rules that made the contract."""
    from exchange.rulebook import store, trading
    from exchange.tables import Listing, Participant

    total = contract.buyer_fee + contract.vendor_fee if total is None else total
    if not total:
        return []
    rules = await store.by_hash(session, _rules_cache, str(contract.content["rules_hash"]))
    vendor = await session.get(Participant, contract.vendor_id)
    listing = await session.get(Listing, contract.listing_id)
    category = str(contract.content.get("category") or (listing.category if listing else ""))
    shares = trading.fee_splits(rules.rulebook, total, category, vendor.sponsor_id if vendor else None)
    # A share for someone who is not a participant (a stale id in the rules) stays with the exchange.
    known = {p for p in (await session.execute(sa.select(Participant.id).where(Participant.id.in_([r for _, r, _ in shares])))).scalars()} if shares else set()  # type: ignore[attr-defined]
    return [share for share in shares if share[1] in known]


async def refund(session: AsyncSession, ledger: Ledger, contract: Contract, now: datetime, *, reason: str) -> Contract:
    refs = References(contract=contract.id, listing=contract.listing_id, note=reason[:200])
    transfers = [
        Transfer(id=f"{hold}.refund", kind=TransferKind.refund, phase=Phase.void, pending_id=hold, references=refs)
        for hold in (contract.pay_hold_id, contract.fee_hold_id)
        if hold
    ]
    if transfers:
        await post_one(session, ledger, JournalIn(transfers=transfers), now)
    contract.status = "refunded"
    contract.updated_at = now
    session.add(contract)
    await session.flush()
    return contract


async def confirm(session: AsyncSession, ledger: Ledger, caller: Caller, contract_id: str, now: datetime) -> ContractOut:
    contract = await load(session, caller, contract_id, for_update=True)
    if caller.id != contract.buyer_id:
        raise Forbidden("Only the buyer confirms delivery.")
    if contract.status != "awaiting_delivery":
        raise InvalidTransition(f"Contract {contract.id} is {contract.status}; only a contract awaiting delivery can be confirmed.")
    return to_out(await settle(session, ledger, contract, now, reason="buyer confirmed delivery"))


async def dispute(session: AsyncSession, caller: Caller, contract_id: str, reason: str, dispute_window: timedelta, now: datetime) -> ContractOut:
    contract = await load(session, caller, contract_id, for_update=True)
    if caller.id not in (contract.buyer_id, contract.vendor_id):
        raise Forbidden("Only a party to the contract may dispute it.")
    if contract.status != "awaiting_delivery":
        raise InvalidTransition(f"Contract {contract.id} is {contract.status}; only a contract awaiting delivery can be disputed.")
    if now > contract.created_at + dispute_window:
        raise InvalidTransition(f"The dispute window of contract {contract.id} closed at {(contract.created_at + dispute_window).isoformat()}.")
    contract.status, contract.dispute_reason, contract.updated_at = "disputed", reason, now
    session.add(contract)
    await session.flush()
    return to_out(contract)


async def resolve(session: AsyncSession, ledger: Ledger, caller: Caller, contract_id: str, outcome: str, reason: str, now: datetime) -> ContractOut:
    contract = await load(session, caller, contract_id, for_update=True)
    if not caller.has("operator"):
        raise Forbidden("Only an operator resolves a dispute.")
    if contract.status != "disputed":
        raise InvalidTransition(f"Contract {contract.id} is {contract.status}, not disputed.")
    if outcome == "release":
        return to_out(await settle(session, ledger, contract, now, reason=f"operator released: {reason}"))
    return to_out(await refund(session, ledger, contract, now, reason=f"operator refunded: {reason}"))


async def settle_due(session: AsyncSession, ledger: Ledger, now: datetime, limit: int = 200) -> int:
    """Auto-confirm: settle contracts whose confirmation window has passed without a dispute."""
    query = (
        sa.select(Contract).where(Contract.status == "awaiting_delivery", Contract.confirm_by <= now)
        .order_by(Contract.confirm_by).limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = list((await session.execute(query)).scalars())
    for contract in due:
        await settle(session, ledger, contract, now, reason="confirmed automatically when the window passed")
    return len(due)
