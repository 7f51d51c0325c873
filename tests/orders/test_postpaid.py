"""Postpaid plans: metered usage reported in idempotent batches, billed per calendar month at
graduated tiers and settled from the buyer's balance, a credit limit that suspends; revenue
share with a minimum and true-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from exchange.db import Database
from exchange.orders import billing
from exchange.orders.sweep import sweep
from exchange.rulebook.store import RulebookCache
from exchange.settings import shipped_rules_dir
from exchange.settlement.ledger import Ledger
from tests.conftest import MovableClock
from tests.harness import Api
from tests.orders.conftest import Market, money

METERED = {"kind": "metered", "tiers": [{"up_to": 1000, "price": money(10)}, {"up_to": None, "price": money(5)}],
           "monthly_fee": money(10_000), "free_calls": 100}


async def run_sweep(api: Api, clock: MovableClock) -> dict[str, int]:
    db = Database(api.settings)
    try:
        return await sweep(db, Ledger(api.settings), RulebookCache(), clock())
    finally:
        await db.dispose()


def usage(batch: str, clock: MovableClock, *calls: int) -> dict[str, Any]:
    return {"batch_id": batch, "records": [{"record_id": f"{batch}-{n}", "at": (clock() - timedelta(minutes=n + 1)).isoformat(), "calls": c}
                                           for n, c in enumerate(calls)]}


async def test_metered_usage_is_billed_per_month_and_settled(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing(METERED)
    _, buyer = await market.buyer(1_000_000)
    order = (await market.order(buyer, listing)).json()
    contract_id = order["contract_ids"][0]
    clock.advance(hours=1)  # the data is used after the purchase
    contract = (await api.request("GET", f"/v1/contracts/{contract_id}", buyer)).json()
    assert contract["status"] == "postpaid" and await market.balances(buyer) == {"available": 1_000_000, "escrow": 0}

    path = f"/v1/contracts/{contract_id}/usage"
    assert (await api.request("POST", path, buyer, json=usage("b1", clock, 500))).status_code == 403
    response = await api.request("POST", path, market.vendor, json=usage("b1", clock, 500, 800))
    assert response.status_code == 200, response.text
    first = response.json()
    assert first["accepted"] == 2 and first["cycle_calls"] == 1300
    assert first["exposure"] == billing.metered_bill(METERED, 1300).total_fen
    again = (await api.request("POST", path, market.vendor, json=usage("b1", clock, 500, 800))).json()
    assert again["duplicate_batch"] is True and again["accepted"] == 0 and again["cycle_calls"] == 1300
    future = usage("b2", clock, 1)
    future["records"][0]["at"] = (clock() + timedelta(days=1)).isoformat()
    assert (await api.request("POST", path, market.vendor, json=future)).status_code == 422

    assert (await run_sweep(api, clock))["bills"] == 0  # November is still open
    clock.now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 1 December, 01:00 in Shanghai
    assert (await run_sweep(api, clock))["bills"] == 1
    [bill] = (await api.request("GET", f"/v1/contracts/{contract_id}/bills", buyer)).json()["items"]
    expected = billing.metered_bill(METERED, 1300).total_fen
    assert bill["status"] == "paid" and bill["quantity"] == 1300 and bill["amount"] == expected == 9_000 + 1_500 + 10_000
    assert await market.balances(buyer) == {"available": 1_000_000 - expected - bill["buyer_fee"], "escrow": 0}
    assert await market.balances(market.vendor) == {"available": expected - bill["vendor_fee"], "escrow": 0}
    assert (await run_sweep(api, clock))["bills"] == 0  # each cycle once
    await market.verify_ledger()


async def test_the_credit_limit_and_unpaid_bills_suspend_the_contract(market: Market, api: Api, clock: MovableClock) -> None:
    settlement = (shipped_rules_dir() / "settlement.toml").read_text(encoding="utf-8").replace(
        "metered_credit_limit_fen = 1000000", "metered_credit_limit_fen = 30000")
    assert (await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"settlement.toml": settlement}, "reason": "tighter credit"})).status_code == 200
    listing = await market.listing(METERED)
    _, buyer = await market.buyer(20_000)
    contract_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    clock.advance(hours=1)
    assert (await api.request("POST", f"/v1/contracts/{contract_id}/token", buyer)).status_code == 200
    over = (await api.request("POST", f"/v1/contracts/{contract_id}/usage", market.vendor, json=usage("u1", clock, 5_000))).json()
    assert over["exposure"] > 30_000 and over["lifecycle"] == "suspended"
    contract = (await api.request("GET", f"/v1/contracts/{contract_id}", buyer)).json()
    assert contract["end_reason"].startswith("settlement.metered_credit_limit_fen")
    assert (await api.request("POST", f"/v1/contracts/{contract_id}/token", buyer)).status_code == 409

    clock.now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 1 December in Shanghai: November is billed
    await run_sweep(api, clock)
    bills = (await api.request("GET", f"/v1/contracts/{contract_id}/bills", buyer)).json()["items"]
    assert bills[0]["status"] == "unpaid"  # 20,000 does not cover the bill
    contract = (await api.request("GET", f"/v1/contracts/{contract_id}", buyer)).json()
    assert contract["lifecycle"] == "suspended" and await market.balances(buyer) == {"available": 20_000, "escrow": 0}

    top_up = await api.request("POST", "/v1/accounts/deposits", api.operator_key, json={
        "participant_id": contract["contract"]["buyer_id"], "amount": 100_000, "currency": "CNY", "rail": "bank", "reference": "top-up-1"})
    assert top_up.status_code == 201
    clock.advance(hours=1)
    await run_sweep(api, clock)  # the unpaid bill is tried again and paid: the contract is active again
    assert (await api.request("GET", f"/v1/contracts/{contract_id}/bills", buyer)).json()["items"][0]["status"] == "paid"
    assert (await api.request("GET", f"/v1/contracts/{contract_id}", buyer)).json()["lifecycle"] == "active"
    await market.verify_ledger()


async def test_revenue_share_bills_the_share_with_a_minimum_and_trues_up(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "revenue_share", "share_bps": 1_000, "minimum": money(50_000)})
    _, buyer = await market.buyer(1_000_000)
    contract_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    path = f"/v1/contracts/{contract_id}/revenue"
    assert (await api.request("POST", path, market.vendor, json={"period": "2026-11", "revenue": 1})).status_code == 403
    first = (await api.request("POST", path, buyer, json={"period": "2026-11", "revenue": 1_000_000})).json()
    assert first["status"] == "paid" and first["detail"]["billed_fen"] == 100_000 and first["amount"] == 100_000
    corrected = (await api.request("POST", path, buyer, json={"period": "2026-11", "revenue": 300_000})).json()
    assert corrected["detail"]["billed_fen"] == 50_000 and corrected["amount"] == -50_000  # minimum applies; the rest is credited
    assert (await market.balances(buyer))["available"] == 1_000_000 - 100_000 - first["buyer_fee"] + 50_000
    assert (await api.request("POST", path, buyer, json={"period": "2027-05", "revenue": 1})).status_code == 422
    await market.verify_ledger()


async def test_a_disputed_bill_is_refunded_by_an_operator(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing({"kind": "revenue_share", "share_bps": 1_000, "minimum": money(50_000)})
    _, buyer = await market.buyer(1_000_000)
    contract_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    bill = (await api.request("POST", f"/v1/contracts/{contract_id}/revenue", buyer, json={"period": "2026-11", "revenue": 2_000_000})).json()
    assert bill["amount"] == 200_000
    outsider = (await market.buyer())[1]
    assert (await api.request("POST", f"/v1/bills/{bill['id']}/dispute", outsider, json={"reason": "x"})).status_code == 404
    disputed = await api.request("POST", f"/v1/bills/{bill['id']}/dispute", buyer, json={"reason": "reported gross, not net revenue"})
    assert disputed.status_code == 200 and disputed.json()["status"] == "disputed"
    assert (await api.request("POST", f"/v1/bills/{bill['id']}/resolve", buyer, json={"outcome": "refund", "reason": "x"})).status_code == 403
    refunded = await api.request("POST", f"/v1/bills/{bill['id']}/resolve", api.operator_key, json={"outcome": "refund", "reason": "net revenue was reported late"})
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert (await market.balances(buyer))["available"] == 1_000_000  # all of it back, fees included
    clock.advance(days=8)  # settlement.toml: dispute_hours = 168
    late = (await api.request("POST", f"/v1/contracts/{contract_id}/revenue", buyer, json={"period": "2026-11", "revenue": 600_000})).json()
    assert (await api.request("POST", f"/v1/bills/{late['id']}/dispute", market.vendor, json={"reason": "x"})).status_code == 200
    clock.advance(days=8)
    other = (await api.request("POST", f"/v1/contracts/{contract_id}/revenue", buyer, json={"period": "2026-12", "revenue": 0})).json()
    clock.advance(days=8)
    assert (await api.request("POST", f"/v1/bills/{other['id']}/dispute", market.vendor, json={"reason": "x"})).status_code == 409
    await market.verify_ledger()
