"""Negotiated plans: request for quote, private offers and counter-offers, acceptance forming the
contract; every step signed and chained; expired or superseded offers cannot be accepted."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

from exchange.core.canonical import canonical_bytes
from exchange.settlement.signing import load_public_pem, verify_signature
from tests.conftest import MovableClock
from tests.harness import Api
from tests.orders.conftest import Market


async def negotiated_listing(market: Market) -> dict[str, Any]:
    return await market.listing({"kind": "negotiated"})


def terms(amount: int, **more: Any) -> dict[str, Any]:
    return {"amount": amount, "quantity": 1, **more}


async def test_request_offer_counter_accept_forms_a_signed_contract(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await negotiated_listing(market)
    buyer_id, buyer = await market.buyer(5_000_000)
    _, outsider = await market.buyer()
    opened = await api.request("POST", "/v1/negotiations", buyer, json={
        "listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "purpose": "research",
        "terms": terms(1_000_000, duration_days=90, message="需要季度数据 / quarterly data please")})
    assert opened.status_code == 201, opened.text
    negotiation = opened.json()
    path = f"/v1/negotiations/{negotiation['id']}"
    assert (await api.request("GET", path, outsider)).status_code == 404  # private to its parties

    offered = await api.request("POST", f"{path}/offers", market.vendor, json={"terms": terms(2_000_000, duration_days=90),
                                                                               "expires_at": (clock() + timedelta(days=2)).isoformat()})
    assert offered.status_code == 201 and offered.json()["steps"][-1]["kind"] == "offer"
    countered = (await api.request("POST", f"{path}/offers", buyer, json={"terms": terms(1_500_000, duration_days=90)})).json()
    assert [s["kind"] for s in countered["steps"]] == ["request", "offer", "counter"]
    assert (await api.request("POST", f"{path}/accept", buyer, json={"seq": 3})).status_code == 403  # not one's own proposal
    assert (await api.request("POST", f"{path}/accept", market.vendor, json={"seq": 2})).status_code == 409  # superseded

    accepted = await api.request("POST", f"{path}/accept", market.vendor, json={"seq": 3})
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "agreed" and body["steps"][-1]["kind"] == "accept"
    contract = (await api.request("GET", f"/v1/contracts/{body['contract_id']}", buyer)).json()["contract"]
    assert contract["amount"] == 1_500_000 and contract["licence"]["duration_days"] == 90 and contract["buyer_id"] == buyer_id
    assert contract["plan"]["negotiation_id"] == negotiation["id"]
    assert (await market.balances(buyer))["escrow"] == 1_500_000 + contract["buyer_fee"]

    keys = {k["key_id"]: load_public_pem(k["public_key_pem"]) for k in (await api.request("GET", "/v1/ledger/keys")).json()["keys"]}
    previous = None
    for step in body["steps"]:
        raw = base64.b64decode(step["canonical"])
        assert raw == canonical_bytes(step["content"]) and verify_signature(keys[step["key_id"]], raw, step["signature"])
        assert step["content"]["previous_sha256"] == previous
        previous = hashlib.sha256(raw).hexdigest()
    assert contract["plan"]["agreed_step_sha256"] == hashlib.sha256(base64.b64decode(body["steps"][2]["canonical"])).hexdigest()
    assert (await api.request("POST", f"{path}/offers", market.vendor, json={"terms": terms(1)})).status_code == 409
    await market.verify_ledger()


async def test_expired_offers_cannot_be_accepted_and_closing_ends_it(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await negotiated_listing(market)
    _, buyer = await market.buyer(5_000_000)
    negotiation = (await api.request("POST", "/v1/negotiations", buyer, json={
        "listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "terms": terms(100_000)})).json()
    path = f"/v1/negotiations/{negotiation['id']}"
    await api.request("POST", f"{path}/offers", market.vendor, json={"terms": terms(300_000), "expires_at": (clock() + timedelta(hours=1)).isoformat()})
    clock.advance(hours=2)
    expired = await api.request("POST", f"{path}/accept", buyer, json={"seq": 2})
    assert expired.status_code == 409 and "expired" in expired.json()["detail"]
    closed = await api.request("POST", f"{path}/close", buyer, json={"reason": "too expensive"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert (await market.balances(buyer)) == {"available": 5_000_000, "escrow": 0}


async def test_a_buyer_who_cannot_pay_leaves_the_negotiation_open(market: Market, api: Api) -> None:
    listing = await negotiated_listing(market)
    _, buyer = await market.buyer(1_000)
    negotiation = (await api.request("POST", "/v1/negotiations", buyer, json={
        "listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "terms": terms(100_000)})).json()
    path = f"/v1/negotiations/{negotiation['id']}"
    refused = await api.request("POST", f"{path}/accept", market.vendor, json={"seq": 1})
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_funds"
    again = (await api.request("GET", path, buyer)).json()
    assert again["status"] == "open" and [s["kind"] for s in again["steps"]] == ["request"]
    not_negotiated = await market.listing({"kind": "fixed", "price": {"amount": 100, "currency": "CNY"}})
    wrong = await api.request("POST", "/v1/negotiations", buyer, json={
        "listing_id": not_negotiated["id"], "plan_id": not_negotiated["plans"][0]["id"], "terms": terms(1)})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "plan_id"
