"""Subscriptions renew when their term ends: a new signed contract for the next period, paid
like any other; not when the buyer cancelled the renewal or cannot pay."""

from __future__ import annotations

from exchange.db import Database
from exchange.orders.sweep import sweep
from exchange.rulebook.store import RulebookCache
from exchange.settlement.ledger import Ledger
from tests.conftest import MovableClock
from tests.harness import Api
from tests.orders.conftest import Market, money


async def run_sweep(api: Api, clock: MovableClock) -> dict[str, int]:
    db = Database(api.settings)
    try:
        return await sweep(db, Ledger(api.settings), RulebookCache(), clock())
    finally:
        await db.dispose()


async def test_a_subscription_renews_until_the_buyer_cannot_pay(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing({"kind": "subscription", "price": money(100_000), "period_days": 30})
    _, buyer = await market.buyer(250_000)
    first_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    first = (await api.request("GET", f"/v1/contracts/{first_id}", buyer)).json()
    assert first["renew"] is True
    assert (await api.request("POST", f"/v1/contracts/{first_id}/confirm", buyer)).status_code == 200

    clock.advance(days=30)
    assert (await run_sweep(api, clock))["subscriptions_renewed"] == 1
    contracts = (await api.request("GET", "/v1/contracts", buyer)).json()["items"]
    second = next(c for c in contracts if c["renews"] == first_id)
    assert second["contract"]["valid_from"] == first["contract"]["valid_until"]
    assert second["contract"]["amount"] == 100_000 and second["lifecycle"] == "active"
    assert (await api.request("GET", f"/v1/contracts/{first_id}", buyer)).json()["lifecycle"] == "expired"
    assert (await api.request("POST", f"/v1/contracts/{second['id']}/token", buyer)).status_code == 200

    clock.advance(days=30)
    assert (await run_sweep(api, clock))["subscriptions_renewed"] == 0  # 50,000 left: not enough for a third period
    after = (await api.request("GET", f"/v1/contracts/{second['id']}", buyer)).json()
    assert after["renew"] is False and "insufficient_funds" in after["end_reason"]
    await market.verify_ledger()


async def test_a_cancelled_renewal_lets_the_term_end(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing({"kind": "subscription", "price": money(10_000), "period_days": 30})
    _, buyer = await market.buyer(100_000)
    contract = (await market.order(buyer, listing)).json()["contract_ids"][0]
    assert (await api.request("POST", f"/v1/contracts/{contract}/cancel-renewal", market.vendor)).status_code == 403
    cancelled = await api.request("POST", f"/v1/contracts/{contract}/cancel-renewal", buyer)
    assert cancelled.status_code == 200 and cancelled.json()["renew"] is False
    clock.advance(days=31)
    done = await run_sweep(api, clock)
    assert done["subscriptions_renewed"] == 0 and done["contracts_expired"] == 1
    assert len((await api.request("GET", "/v1/contracts", buyer)).json()["items"]) == 1
