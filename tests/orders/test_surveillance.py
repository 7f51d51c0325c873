"""Surveillance: concentration limits per category, circuit breakers on quota books, and the
regulator's concentration report."""

from __future__ import annotations

from exchange.settings import shipped_rules_dir
from tests.harness import Api
from tests.orders.conftest import Market, money


async def test_no_buyer_gathers_more_than_the_limit_of_a_category(market: Market, api: Api) -> None:
    trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8").replace("concentration_min_licences = 20", "concentration_min_licences = 3")
    assert (await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"trading.toml": trading}, "reason": "watch"})).status_code == 200
    listing = await market.listing({"kind": "fixed", "price": money(1_000)})
    first_id, first = await market.buyer(100_000)
    _, second = await market.buyer(100_000)
    assert (await market.order(first, listing, quantity=2)).status_code == 201
    assert (await market.order(second, listing)).status_code == 201
    refused = await market.order(first, listing)
    assert refused.status_code == 422 and refused.json()["violations"][0]["rule"] == "trading.surveillance.concentration_max_bps"
    assert "3 of the 4 transport licences" in refused.json()["violations"][0]["message"]

    regulator = (await api.participant("regulator"))[1]
    report = (await api.request("GET", "/v1/surveillance/concentration", regulator)).json()
    [transport] = report["categories"]
    assert transport["licences"] == 3 and transport["top"][0] == {"buyer_id": first_id, "licences": 2, "share_bps": 6666}
    assert (await api.request("GET", "/v1/surveillance/concentration", first)).status_code == 403


async def test_a_quota_book_halts_when_its_price_jumps(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "quota", "unit": "1 GB", "reference_price": money(10_000)})
    _, buyer = await market.buyer(10_000_000)
    for price in (10_000, 11_500):
        assert (await market.order(market.vendor, listing, side="sell", quantity=10, price=price)).status_code == 201
    assert (await market.order(buyer, listing, quantity=10, price=10_000)).json()["status"] == "filled"
    assert (await market.order(buyer, listing, quantity=10, price=11_500)).json()["status"] == "filled"
    book = (await api.request("GET", f"/v1/listings/{listing['id']}/book")).json()
    assert book["status"] == "halted"
    refused = await market.order(buyer, listing, quantity=1, price=11_500)
    assert refused.status_code == 409 and "circuit_breaker_bps" in refused.json()["detail"]
    await market.verify_ledger()
