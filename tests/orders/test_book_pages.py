"""A taker reads only the makers it can reach, a page at a time: it must trade exactly as if
the whole book had been loaded. The pure matching core on the whole book is the reference."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from exchange.orders import matching, service
from tests.conftest import MovableClock
from tests.harness import Api
from tests.orders.conftest import Market, money


@pytest.mark.parametrize("seed", [1, 2])
async def test_paged_makers_trade_as_the_whole_book(market: Market, api: Api, clock: MovableClock, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(service, "MAKERS_PAGE", int(__import__("os").environ.get("PAGE", "2")))  # many pages per taker
    listing = await market.listing({"kind": "quota", "unit": "10,000 API calls", "reference_price": money(10_000)})
    buyers = [await market.buyer(10**10) for _ in range(3)]
    reference = matching.Book(band=(8_000, 12_000), self_trade="cancel_taker")
    owner_of: dict[str, str] = {}
    expiring: dict[str, Any] = {}
    rng = random.Random(seed)
    seq = 0

    for step in range(36):
        clock.advance(seconds=3)
        for order_id, expires_at in list(expiring.items()):
            if expires_at <= clock.now:
                reference.cancel(order_id)
                del expiring[order_id]
        sell = step < 10 or rng.random() < 0.35
        key = market.vendor if sell else rng.choice(buyers)[1]
        tif = rng.choice(["gtc", "gtc", "ioc", "fok"])
        order_type = "market" if tif != "gtc" and rng.random() < 0.2 else "limit"
        body: dict[str, Any] = {"side": "sell" if sell else "buy", "quantity": rng.randint(1, 9), "time_in_force": tif, "type": order_type}
        if order_type == "limit":
            body["price"] = rng.randrange(9_800, 10_300, 50)  # within the circuit breaker
        lapses = tif == "gtc" and rng.random() < 0.2
        if lapses:
            body["expires_at"] = (clock.now + timedelta(seconds=7)).isoformat()
        response = await market.order(key, listing, **body)
        assert response.status_code == 201, response.text
        placed = response.json()
        seq += 1
        owner_of[placed["id"]] = placed["participant_id"]
        outcome = reference.submit(matching.Order(
            id=placed["id"], owner=placed["participant_id"], side=matching.Side(body["side"]), type=matching.OrderType(order_type),
            price=body.get("price"), quantity=body["quantity"], time_in_force=matching.TimeInForce(tif), seq=seq,
        ))
        assert [(f["price"], f["quantity"]) for f in placed["fills"]] == [(f.price, f.quantity) for f in outcome.fills], (step, body)
        assert placed["status"] == ("open" if outcome.rested else "filled" if outcome.remaining == 0 else "cancelled"), (step, body)
        if lapses and outcome.rested:
            expiring[placed["id"]] = clock.now + timedelta(seconds=7)

    resting = {order.id: order.remaining for order in reference.resting()}
    for order_id in owner_of:
        stored = (await api.request("GET", f"/v1/orders/{order_id}", api.operator_key)).json()
        if order_id in resting:
            assert stored["status"] == "open" and stored["remaining"] == resting[order_id], stored
        else:
            assert stored["status"] != "open" or stored["expires_at"] is not None, stored
    book = (await api.request("GET", f"/v1/listings/{listing['id']}/book", params={"levels": 50})).json()
    depth = reference.depth(50)
    assert [(l["price"], l["quantity"], l["orders"]) for l in book["asks"]] == [tuple(level) for level in depth["asks"]]
    assert [(l["price"], l["quantity"], l["orders"]) for l in book["bids"]] == [tuple(level) for level in depth["bids"]]
    await market.verify_ledger()
