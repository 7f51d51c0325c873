"""Trading fixtures: a vendor, buyers with money, helpers to list and trade."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from exchange.db import Database
from exchange.orders.billing import month_of
from exchange.settlement import audit
from exchange.tables import Contract, MonthlyVolume, UsageCycle, UsageRecord
from tests.harness import Api

CNY = "CNY"


def money(fen: int) -> dict[str, Any]:
    return {"amount": fen, "currency": CNY}


class Market:
    """A vendor, buyers with money, and helpers to trade."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def start(self) -> None:
        self.vendor_id, self.vendor = await self.api.participant("vendor", qualifications=["data-merchant"], name="Vendor")

    async def buyer(self, fen: int = 0, qualifications: list[str] | None = None) -> tuple[str, str]:
        buyer_id, key = await self.api.participant("buyer", qualifications=qualifications, name="Buyer")
        if fen:
            response = await self.api.request("POST", "/v1/accounts/deposits", self.api.operator_key,
                                              json={"participant_id": buyer_id, "amount": fen, "currency": CNY, "rail": "bank", "reference": f"dep-{buyer_id}"})
            assert response.status_code == 201, response.text
        return buyer_id, key

    async def listing(self, *plans: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        return await self.api.listed(self.vendor, plans=list(plans), **overrides)

    async def order(self, key: str, listing: dict[str, Any], plan: int = 0, **body: Any) -> Any:
        return await self.api.request("POST", "/v1/orders", key, json={"listing_id": listing["id"], "plan_id": listing["plans"][plan]["id"], **body})

    async def balances(self, key: str) -> dict[str, int]:
        out = (await self.api.request("GET", "/v1/accounts/me", key)).json()["balances"]
        return {"available": out[0]["available"], "escrow": out[0]["escrow"]} if out else {"available": 0, "escrow": 0}

    async def fees_balance(self) -> int:
        accounts = (await self.api.request("GET", "/v1/accounts", self.api.operator_key)).json()
        assert accounts["totals"].get(CNY, 0) == 0
        return next((a["balance"] for a in accounts["accounts"] if a["id"] == "exchange:fees:CNY"), 0)

    async def verify_ledger(self) -> None:
        db = Database(self.api.settings)
        try:
            report = await audit.verify_database(db)
            async with db.read() as session:
                kept, summed = await kept_volumes(session), await summed_volumes(session)
                assert kept == summed, (sorted(kept.items()), sorted(summed.items()))
                cycles = {(c.contract_id, c.cycle_start): c.calls for c in (await session.execute(sa.select(UsageCycle))).scalars()}
                counted: dict[tuple[str, Any], int] = {}
                for record in (await session.execute(sa.select(UsageRecord))).scalars():
                    key = (record.contract_id, month_of(record.at)[0])
                    counted[key] = counted.get(key, 0) + record.calls
                assert cycles == counted
        finally:
            await db.dispose()
        assert report.ok, report.problems


async def kept_volumes(session: Any) -> dict[tuple[str, Any], int]:
    rows = (await session.execute(sa.select(MonthlyVolume))).scalars()
    return {(row.participant_id, row.month_start): row.amount for row in rows if row.amount}


async def summed_volumes(session: Any) -> dict[tuple[str, Any], int]:
    """Monthly volumes summed from the contracts, as fee tiers define them."""
    sums: dict[tuple[str, Any], int] = {}
    for contract in (await session.execute(sa.select(Contract).where(Contract.status != "refunded"))).scalars():
        for party in {contract.buyer_id, contract.vendor_id}:
            key = (party, month_of(contract.created_at)[0])
            sums[key] = sums.get(key, 0) + contract.amount
    return {key: amount for key, amount in sums.items() if amount}


@pytest.fixture
async def market(api: Api) -> Market:
    created = Market(api)
    await created.start()
    return created
