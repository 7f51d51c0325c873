"""Amendments: a party proposes new licence terms, the other accepts; a new signed contract
amends the old one and carries its money; the old one is marked amended."""

from __future__ import annotations

import base64

from exchange.core.canonical import canonical_bytes
from exchange.settlement.signing import load_public_pem, verify_signature
from tests.harness import Api
from tests.orders.conftest import Market, money


async def test_an_accepted_amendment_is_a_new_signed_contract_carrying_the_escrow(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(100_000)})
    _, buyer = await market.buyer(1_000_000)
    old_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    proposal = await api.request("POST", f"/v1/contracts/{old_id}/amendments", buyer,
                                 json={"changes": {"duration_days": 730, "territory": "CN-SH"}, "reason": "a two-year study in Shanghai"})
    assert proposal.status_code == 201, proposal.text
    amendment = proposal.json()
    path = f"/v1/contracts/{old_id}/amendments/{amendment['id']}"
    assert (await api.request("POST", f"{path}/accept", buyer)).status_code == 403  # not one's own proposal
    accepted = await api.request("POST", f"{path}/accept", market.vendor)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    new_id = accepted.json()["new_contract_id"]

    old = (await api.request("GET", f"/v1/contracts/{old_id}", buyer)).json()
    new = (await api.request("GET", f"/v1/contracts/{new_id}", buyer)).json()
    assert old["lifecycle"] == "amended" and old["status"] == "amended"
    assert new["amends"] == old_id and new["lifecycle"] == "active" and new["status"] == "awaiting_delivery"
    assert new["contract"]["licence"]["duration_days"] == 730 and new["contract"]["licence"]["territory"] == "CN-SH"
    keys = {k["key_id"]: load_public_pem(k["public_key_pem"]) for k in (await api.request("GET", "/v1/ledger/keys")).json()["keys"]}
    raw = base64.b64decode(new["canonical"])
    assert raw == canonical_bytes(new["contract"]) and verify_signature(keys[new["key_id"]], raw, new["signature"])
    assert (await api.request("POST", f"/v1/contracts/{old_id}/confirm", buyer)).status_code == 409
    assert (await api.request("POST", f"/v1/contracts/{old_id}/token", buyer)).status_code == 409
    settled = await api.request("POST", f"/v1/contracts/{new_id}/confirm", buyer)
    assert settled.status_code == 200 and settled.json()["status"] == "settled"  # the escrow moved with the amendment
    assert await market.balances(market.vendor) == {"available": 100_000 - new["contract"]["vendor_fee"], "escrow": 0}
    await market.verify_ledger()


async def test_declined_amendments_change_nothing(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(100_000)})
    _, buyer = await market.buyer(1_000_000)
    contract = (await market.order(buyer, listing)).json()["contract_ids"][0]
    amendment = (await api.request("POST", f"/v1/contracts/{contract}/amendments", market.vendor,
                                   json={"changes": {"purposes": ["marketing"]}, "reason": "wider use"})).json()
    declined = await api.request("POST", f"/v1/contracts/{contract}/amendments/{amendment['id']}/decline", buyer)
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert (await api.request("GET", f"/v1/contracts/{contract}", buyer)).json()["lifecycle"] == "active"
    empty = await api.request("POST", f"/v1/contracts/{contract}/amendments", buyer, json={"changes": {}, "reason": "nothing"})
    assert empty.status_code == 422
