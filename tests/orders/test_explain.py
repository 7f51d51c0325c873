"""Explain answers name every rule evaluated, the one that refused, and the rule-set hash."""

from __future__ import annotations

from tests.harness import Api
from tests.orders.conftest import Market, money


async def test_explain_names_the_rule_that_refused_an_order_and_the_hash(market: Market, api: Api) -> None:
    listing = await market.listing(
        {"kind": "fixed", "price": money(100_000)}, category="medical", grade="L3", personal_data=True,
        attestations={"source": "hospital records under ethics approval", "rights": ["holding", "use", "operation"], "consent": "consent records"},
    )
    _, buyer = await market.buyer(1_000_000)
    refused = await market.order(buyer, listing, purpose="research")
    assert refused.status_code == 422
    [rejected] = (await api.request("GET", "/v1/orders", buyer, params={"status": "rejected"})).json()["items"]
    answer = await api.request("GET", f"/v1/orders/{rejected['id']}/explain", buyer)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["decision"] == "refused" and body["rulebook_hash"] == refused.json()["rulebook_hash"]
    failed = {t["rule"] for t in body["rules"] if t["outcome"] == "fail"}
    assert failed == {v["rule"] for v in refused.json()["violations"]}
    assert any(t["outcome"] == "pass" for t in body["rules"]) and any(t["outcome"] == "not_applicable" for t in body["rules"])
    access = next(t for t in body["rules"] if t["rule"] == "trading.access.medical-sensitive.qualifications_any")
    assert access["inputs"]["buyer_qualifications"] == [] and "medical-licensed" in str(access["inputs"])
    stranger = (await market.buyer())[1]
    assert (await api.request("GET", f"/v1/orders/{rejected['id']}/explain", stranger)).status_code == 404


async def test_explain_listing_reviews_and_contract_fees(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(1_000_000)})
    review = (await api.request("GET", f"/v1/listings/{listing['id']}/explain", api.operator_key)).json()
    assert review["decision"] == "listed" and all(t["outcome"] != "fail" for t in review["rules"])
    assert any(t["rule"] == "listing.required.schema" and t["outcome"] == "pass" for t in review["rules"])
    _, buyer = await market.buyer(2_000_000)
    contract_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    fees = (await api.request("GET", f"/v1/contracts/{contract_id}/explain", buyer)).json()
    vendor = next(t for t in fees["rules"] if t["rule"] == "fees.fixed.vendor_bps")
    contract = (await api.request("GET", f"/v1/contracts/{contract_id}", buyer)).json()["contract"]
    assert vendor["inputs"]["fee_fen"] == contract["vendor_fee"] and fees["rulebook_hash"] == contract["rules_hash"]
