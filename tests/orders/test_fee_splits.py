"""Fee splits: a settled trade's fees are shared with the vendor's sponsoring data merchant and,
for public data, the authorising public body; each share is a journal line and a certificate line."""

from __future__ import annotations

from exchange.settings import shipped_rules_dir
from tests.harness import Api
from tests.orders.conftest import Market, money


async def test_fees_are_shared_with_the_sponsor_and_the_public_body(market: Market, api: Api) -> None:
    sponsor_id, sponsor = await api.participant("vendor", qualifications=["data-merchant"], name="数商 sponsor")
    body_id, body = await api.participant("vendor", name="Shanghai Big Data Center")
    fees = (shipped_rules_dir() / "fees.toml").read_text(encoding="utf-8").replace(
        'public_body_bps = 0\npublic_body_id = ""', f'public_body_bps = 2000\npublic_body_id = "{body_id}"')
    applied = await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"fees.toml": fees}, "reason": "public data revenue share"})
    assert applied.status_code == 200, applied.text
    _, vendor = await api.participant("vendor", sponsor_id=sponsor_id, name="Sponsored vendor")
    listing = await api.listed(vendor, category="public", plans=[{"kind": "fixed", "price": money(1_000_000)}])
    _, buyer = await market.buyer(2_000_000, qualifications=["public-data-operator"])
    contract_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    settled = (await api.request("POST", f"/v1/contracts/{contract_id}/confirm", buyer)).json()
    terms = settled["contract"]
    total = terms["buyer_fee"] + terms["vendor_fee"]
    shares = {s["share"]: s for s in settled["certificate"]["fee_shares"]}
    assert shares["sponsor"] == {"share": "sponsor", "participant_id": sponsor_id, "amount": total * 1000 // 10000}
    assert shares["public_body"] == {"share": "public_body", "participant_id": body_id, "amount": total * 2000 // 10000}
    assert await market.balances(sponsor) == {"available": total // 10, "escrow": 0}
    assert await market.balances(body) == {"available": total // 5, "escrow": 0}
    assert await market.fees_balance() == total - total // 10 - total // 5
    await market.verify_ledger()


async def test_a_vendor_without_sponsor_shares_nothing(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(1_000_000)})
    _, buyer = await market.buyer(2_000_000)
    contract_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    settled = (await api.request("POST", f"/v1/contracts/{contract_id}/confirm", buyer)).json()
    assert settled["certificate"]["fee_shares"] == []
    broken = (shipped_rules_dir() / "fees.toml").read_text(encoding="utf-8").replace("public_body_bps = 0", "public_body_bps = 500")
    refused = await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"fees.toml": broken}, "reason": "x"})
    assert refused.status_code == 422 and "splits.public_body_id" in refused.text
