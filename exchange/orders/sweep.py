"""Work that time makes due: auctions past their close, contracts past their confirmation
window, resting orders past their lifetime. The server runs it on a timer; tests call it."""

from __future__ import annotations

from datetime import datetime

from exchange.db import Database
from exchange.orders import auctions, contracts, postpaid, renewals, service
from exchange.rulebook import store, trading
from exchange.rulebook.store import RulebookCache
from exchange.settlement.ledger import Ledger


async def sweep(db: Database, ledger: Ledger, cache: RulebookCache, now: datetime) -> dict[str, int]:
    async with db.write() as session:
        rules = await store.active(session, cache, now)
        closed = await auctions.close_due(session, ledger, rules, now)
    async with db.write() as session:
        expired = await service.expire_due(session, ledger, now)
    async with db.write() as session:
        lapsed = await service.lapse_due(session, ledger, now)
    settled = 0
    if trading.settlement_windows(rules.rulebook)[1]:
        async with db.write() as session:
            settled = await contracts.settle_due(session, ledger, now)
    async with db.write() as session:
        renewed = await renewals.renew_due(session, ledger, rules, now)
    async with db.write() as session:
        billed = await postpaid.bill_due(session, ledger, rules, now)
    async with db.write() as session:
        ended = await contracts.expire_due(session, now)
    return {"auctions_closed": closed, "orders_expired": expired, "contracts_settled": settled, "contracts_expired": ended, "approvals_lapsed": lapsed, "subscriptions_renewed": renewed, "bills": billed}
