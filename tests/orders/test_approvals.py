"""Approval-gated purchases (无场景不交易): the buyer states its use case, the money is held,
and the vendor approves (contract formed) or declines (money back) within the rules' window,
else the order lapses and the hold is released."""

from __future__ import annotations

from typing import Any

from exchange.db import Database
from exchange.orders.sweep import sweep
from exchange.rulebook.store import RulebookCache
from exchange.settlement.ledger import Ledger
from tests.conftest import MovableClock
from tests.harness import Api
from tests.orders.conftest import Market, money


async def gated(market: Market) -> dict[str, Any]:
    return await market.listing({"kind": "fixed", "price": money(200_000), "approval_required": True})


USE_CASE = "城市交通规划研究：评估新线路客流 / transport planning research on a new metro line"


async def test_approved_orders_become_contracts_and_declined_ones_give_the_money_back(market: Market, api: Api) -> None:
    listing = await gated(market)
    _, buyer = await market.buyer(1_000_000)
    missing = await market.order(buyer, listing)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "use_case"

    first = (await market.order(buyer, listing, use_case=USE_CASE)).json()
    second = (await market.order(buyer, listing, use_case=USE_CASE)).json()
    assert first["status"] == second["status"] == "pending_approval" and first["held"] >= 200_000
    waiting = (await api.request("GET", "/v1/approvals", market.vendor)).json()["items"]
    assert {o["id"] for o in waiting} == {first["id"], second["id"]} and waiting[0]["use_case"] == USE_CASE
    assert (await api.request("POST", f"/v1/orders/{first['id']}/approve", buyer)).status_code == 403

    approved = await api.request("POST", f"/v1/orders/{first['id']}/approve", market.vendor)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "filled" and len(approved.json()["contract_ids"]) == 1
    declined = await api.request("POST", f"/v1/orders/{second['id']}/decline", market.vendor, json={"reason": "use case outside the licence"})
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    contract = (await api.request("GET", f"/v1/contracts/{approved.json()['contract_ids'][0]}", buyer)).json()["contract"]
    assert await market.balances(buyer) == {"available": 1_000_000 - 200_000 - contract["buyer_fee"], "escrow": 200_000 + contract["buyer_fee"]}
    assert (await api.request("POST", f"/v1/orders/{second['id']}/approve", market.vendor)).status_code == 409
    await market.verify_ledger()


async def test_undecided_orders_lapse_and_release_the_hold(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await gated(market)
    _, buyer = await market.buyer(1_000_000)
    order = (await market.order(buyer, listing, use_case=USE_CASE)).json()
    clock.advance(hours=48, seconds=1)  # settlement.toml: approval_hours
    late = await api.request("POST", f"/v1/orders/{order['id']}/approve", market.vendor)
    assert late.status_code == 409 and "lapsed" in late.json()["detail"]
    db = Database(api.settings)
    try:
        done = await sweep(db, Ledger(api.settings), RulebookCache(), clock())
    finally:
        await db.dispose()
    assert done["approvals_lapsed"] == 1
    assert (await api.request("GET", f"/v1/orders/{order['id']}", buyer)).json()["status"] == "lapsed"
    assert await market.balances(buyer) == {"available": 1_000_000, "escrow": 0}
    await market.verify_ledger()
