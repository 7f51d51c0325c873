"""Contracts after the sale: short-lived entitlement tokens refreshed while active, termination
where the licence allows, expiry, and vendors' notices to holders."""

from __future__ import annotations

from typing import Any

import jwt

from exchange.db import Database
from exchange.orders.sweep import sweep
from exchange.rulebook.store import RulebookCache
from exchange.settlement.ledger import Ledger
from tests.conftest import MovableClock
from tests.harness import Api
from tests.orders.conftest import Market, money


async def contract_of(market: Market, listing: dict[str, Any], buyer: str) -> str:
    response = await market.order(buyer, listing)
    assert response.status_code == 201, response.text
    return response.json()["contract_ids"][0]  # type: ignore[no-any-return]


async def test_tokens_are_short_lived_and_refused_once_the_contract_ends(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(10_000)})
    _, buyer = await market.buyer(100_000)
    contract = await contract_of(market, listing, buyer)
    first = (await api.request("POST", f"/v1/contracts/{contract}/token", buyer)).json()
    claims = jwt.decode(first["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60 * 60  # settlement.toml: entitlement_token_minutes
    clock.advance(minutes=30)
    second = (await api.request("POST", f"/v1/contracts/{contract}/token", buyer)).json()
    assert jwt.decode(second["token"], options={"verify_signature": False})["iat"] == claims["iat"] + 30 * 60
    assert (await api.request("POST", f"/v1/contracts/{contract}/token", market.vendor)).status_code == 403

    ended = await api.request("POST", f"/v1/contracts/{contract}/terminate", buyer, json={"reason": "project cancelled"})
    assert ended.status_code == 200, ended.text
    body = ended.json()
    assert body["lifecycle"] == "terminated" and body["status"] == "refunded"  # never delivered: the escrow went back
    assert await market.balances(buyer) == {"available": 100_000, "escrow": 0}
    refused = await api.request("POST", f"/v1/contracts/{contract}/token", buyer)
    assert refused.status_code == 409 and "terminated" in refused.json()["detail"]
    assert (await api.request("POST", f"/v1/contracts/{contract}/terminate", buyer, json={"reason": "again"})).status_code == 409
    await market.verify_ledger()


async def test_who_may_terminate_follows_the_licence(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(10_000)},
                                   licence={"purposes": ["research"], "duration_days": 30, "termination": "buyer_only"})
    _, buyer = await market.buyer(100_000)
    contract = await contract_of(market, listing, buyer)
    assert (await api.request("POST", f"/v1/contracts/{contract}/confirm", buyer)).status_code == 200
    vendor_try = await api.request("POST", f"/v1/contracts/{contract}/terminate", market.vendor, json={"reason": "mine"})
    assert vendor_try.status_code == 403 and "buyer only" in vendor_try.json()["detail"]
    by_operator = await api.request("POST", f"/v1/contracts/{contract}/terminate", api.operator_key, json={"reason": "licence breach"})
    assert by_operator.status_code == 200 and by_operator.json()["lifecycle"] == "terminated"
    assert by_operator.json()["status"] == "settled"  # delivered and paid: terminating moves no money


async def test_contracts_expire_at_the_end_of_their_term(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(10_000)}, licence={"purposes": ["research"], "duration_days": 10})
    _, buyer = await market.buyer(100_000)
    contract = await contract_of(market, listing, buyer)
    clock.advance(days=10, seconds=1)
    refused = await api.request("POST", f"/v1/contracts/{contract}/token", buyer)
    assert refused.status_code == 409 and "expired" in refused.json()["detail"]
    db = Database(api.settings)
    try:
        done = await sweep(db, Ledger(api.settings), RulebookCache(), clock())
    finally:
        await db.dispose()
    assert done["contracts_expired"] == 1
    assert (await api.request("GET", f"/v1/contracts/{contract}", buyer)).json()["lifecycle"] == "expired"


async def test_vendors_notify_the_holders_of_a_listing(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(10_000)})
    _, holder = await market.buyer(100_000)
    _, outsider = await market.buyer(100_000)
    await contract_of(market, listing, holder)
    notice = {"kind": "schema_change", "message": "字段 trips 将改名为 trip_count。The trips field becomes trip_count on 1 December."}
    posted = await api.request("POST", f"/v1/listings/{listing['id']}/notices", market.vendor, json=notice)
    assert posted.status_code == 201, posted.text
    other_vendor = (await api.participant("vendor"))[1]
    assert (await api.request("POST", f"/v1/listings/{listing['id']}/notices", other_vendor, json=notice)).status_code == 403
    mine = (await api.request("GET", "/v1/notices", holder)).json()["items"]
    assert [n["kind"] for n in mine] == ["schema_change"] and mine[0]["listing_id"] == listing["id"]
    assert (await api.request("GET", "/v1/notices", outsider)).json()["items"] == []
    assert (await api.request("GET", f"/v1/listings/{listing['id']}/notices", outsider)).status_code == 403
    assert len((await api.request("GET", f"/v1/listings/{listing['id']}/notices", holder)).json()["items"]) == 1
    bad = await api.request("POST", f"/v1/listings/{listing['id']}/notices", market.vendor, json={"kind": "rumour", "message": "x"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "kind"
