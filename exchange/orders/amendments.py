"""Amendments: one party proposes new licence terms, the other accepts; the accepted terms are
a new contract, signed like any other, that names the contract it amends. The money already
held or paid moves with it unchanged; the old contract is marked amended."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.canonical import canonical_bytes, sha256_hex
from exchange.core.errors import Forbidden, InvalidInput, InvalidTransition, NotFound
from exchange.core.ids import new_id
from exchange.orders import contracts
from exchange.orders.schemas import AmendmentIn, AmendmentOut
from exchange.settlement.ledger import Ledger, millis
from exchange.tables import Amendment, Contract


def to_out(row: Amendment) -> AmendmentOut:
    return AmendmentOut(id=row.id, contract_id=row.contract_id, proposed_by=row.proposed_by, changes=row.changes, reason=row.reason,
                        status=row.status, new_contract_id=row.new_contract_id, created_at=row.created_at, decided_at=row.decided_at)


def _party(caller: Caller, contract: Contract) -> None:
    if caller.id not in (contract.buyer_id, contract.vendor_id):
        raise Forbidden("Only the parties amend a contract.")


async def propose(session: AsyncSession, caller: Caller, contract_id: str, body: AmendmentIn, now: datetime) -> AmendmentOut:
    contract = await contracts.load(session, caller, contract_id, for_update=True)
    _party(caller, contract)
    contracts._lapse_if_due(contract, now)
    if contract.lifecycle != "active":
        raise InvalidTransition(f"Contract {contract.id} is {contract.lifecycle}; only an active contract can be amended.")
    changes = {k: v for k, v in msgspec.to_builtins(body.changes).items() if v is not None}
    if not changes:
        raise InvalidInput("changes: propose at least one new term", errors=[{"field": "changes", "reason": "empty"}])
    row = Amendment(id=new_id("amd"), contract_id=contract.id, proposed_by=caller.id, changes=changes, reason=body.reason,
                    status="proposed", created_at=now)
    session.add(row)
    await session.flush()
    return to_out(row)


async def _proposal(session: AsyncSession, caller: Caller, contract_id: str, amendment_id: str) -> tuple[Contract, Amendment]:
    contract = await contracts.load(session, caller, contract_id, for_update=True)
    _party(caller, contract)
    row = await session.get(Amendment, amendment_id)
    if row is None or row.contract_id != contract.id:
        raise NotFound(f"No amendment {amendment_id!r} of contract {contract.id}.")
    if row.status != "proposed":
        raise InvalidTransition(f"Amendment {row.id} is {row.status}.")
    if row.proposed_by == caller.id:
        raise Forbidden("The other party decides on a proposed amendment.")
    return contract, row


async def accept(session: AsyncSession, ledger: Ledger, caller: Caller, contract_id: str, amendment_id: str, now: datetime) -> AmendmentOut:
    old, row = await _proposal(session, caller, contract_id, amendment_id)
    contracts._lapse_if_due(old, now)
    if old.lifecycle != "active":
        raise InvalidTransition(f"Contract {old.id} is {old.lifecycle}; it can no longer be amended.")
    new_id_ = new_id("ctr")
    licence = {**old.content.get("licence", {}), **row.changes}
    valid_from = int(old.content.get("valid_from", old.content["created_at"]))
    valid_until = valid_from + int(licence.get("duration_days", 365)) * 86_400_000 if "duration_days" in row.changes else int(old.content["valid_until"])
    content = {
        **old.content, "id": new_id_, "licence": licence, "valid_until": valid_until, "amends": old.id,
        "amends_sha256": sha256_hex(old.content), "amendment": {"id": row.id, "proposed_by": row.proposed_by, "accepted_by": caller.id, "reason": row.reason},
        "created_at": millis(now),
    }
    canonical = canonical_bytes(content)
    signer = await ledger.active_signer(session, now)
    until = datetime.fromtimestamp(valid_until / 1000, UTC)
    new = Contract(
        id=new_id_, listing_id=old.listing_id, buyer_id=old.buyer_id, vendor_id=old.vendor_id, order_id=old.order_id, plan_kind=old.plan_kind,
        amount=old.amount, buyer_fee=old.buyer_fee, vendor_fee=old.vendor_fee, currency=old.currency, status=old.status, content=content,
        canonical=canonical, key_id=signer.key_id, signature=signer.sign(canonical), pay_hold_id=old.pay_hold_id, fee_hold_id=old.fee_hold_id,
        confirm_by=old.confirm_by, certificate=old.certificate, certificate_signature=old.certificate_signature,
        certificate_index=old.certificate_index, lifecycle="active", valid_until=until, renew=old.renew, renews=old.renews,
        billed_through=old.billed_through, amends=old.id, created_at=now, updated_at=now,
    )
    session.add(new)
    # The money and the obligations move to the new contract; the old one keeps its history.
    old.status, old.pay_hold_id, old.fee_hold_id, old.renew = "amended", None, None, False
    contracts._end(old, "amended", f"amended by {new_id_}", now)
    session.add(old)
    row.status, row.new_contract_id, row.decided_at = "accepted", new_id_, now
    session.add(row)
    await session.flush()
    return to_out(row)


async def decline(session: AsyncSession, caller: Caller, contract_id: str, amendment_id: str, now: datetime) -> AmendmentOut:
    _, row = await _proposal(session, caller, contract_id, amendment_id)
    row.status, row.decided_at = "declined", now
    session.add(row)
    await session.flush()
    return to_out(row)


async def of_contract(session: AsyncSession, caller: Caller, contract_id: str) -> list[AmendmentOut]:
    contract = await contracts.load(session, caller, contract_id)
    rows = (await session.execute(sa.select(Amendment).where(Amendment.contract_id == contract.id).order_by(Amendment.created_at))).scalars()
    return [to_out(r) for r in rows]
