"""Trading end to end through HTTP: order or bid, fill or close, signed contract, escrow,
confirmation, certificate, ledger entries, fees and balances, under the trading rules."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jwt

from exchange.core.canonical import canonical_bytes
from exchange.db import Database
from exchange.orders.sweep import sweep
from exchange.rulebook.store import RulebookCache
from exchange.settlement.ledger import Ledger
from exchange.settlement.signing import load_public_pem, verify_signature
from tests.conftest import MovableClock
from tests.harness import Api
from tests.orders.conftest import Market, money


async def test_fixed_plan_buy_confirm_settle_certificate(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(1_000_000)})
    buyer_id, buyer = await market.buyer(2_000_000)
    response = await market.order(buyer, listing, purpose="research", **{"quantity": 1})
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "filled" and order["filled"] == 1 and len(order["contract_ids"]) == 1
    contract_id = order["contract_ids"][0]

    contract = (await api.request("GET", f"/v1/contracts/{contract_id}", buyer)).json()
    terms = contract["contract"]
    fee = terms["buyer_fee"] + terms["vendor_fee"]
    assert terms["amount"] == 1_000_000 and terms["buyer_id"] == buyer_id and terms["vendor_id"] == market.vendor_id
    assert terms["licence"]["duration_days"] == 365 and terms["rules_hash"] == order["rulebook_hash"]
    assert base64.b64decode(contract["canonical"]) == canonical_bytes(terms)
    keys = {k["key_id"]: k["public_key_pem"] for k in (await api.request("GET", "/v1/ledger/keys")).json()["keys"]}
    assert verify_signature(load_public_pem(keys[contract["key_id"]]), base64.b64decode(contract["canonical"]), contract["signature"])
    assert await market.balances(buyer) == {"available": 2_000_000 - 1_000_000 - terms["buyer_fee"], "escrow": 1_000_000 + terms["buyer_fee"]}

    stranger = (await market.buyer())[1]
    assert (await api.request("GET", f"/v1/contracts/{contract_id}", stranger)).status_code == 404
    assert (await api.request("POST", f"/v1/contracts/{contract_id}/confirm", market.vendor)).status_code == 403

    clock.now = max(clock.now, datetime.now(UTC))  # tokens are short-lived: PyJWT checks them against the real clock
    token = (await api.request("GET", f"/v1/contracts/{contract_id}/entitlement", buyer)).json()
    claims = jwt.decode(token["token"], keys[token["key_id"]], algorithms=["EdDSA"], audience=market.vendor_id)
    assert claims["contract_id"] == contract_id and claims["sub"] == buyer_id and claims["listing_id"] == listing["id"]

    settled = await api.request("POST", f"/v1/contracts/{contract_id}/confirm", buyer)
    assert settled.status_code == 200, settled.text
    body = settled.json()
    assert body["status"] == "settled" and body["certificate"]["contract_id"] == contract_id
    assert verify_signature(load_public_pem(keys[contract["key_id"]]), canonical_bytes(body["certificate"]), body["certificate_signature"])
    assert await market.balances(buyer) == {"available": 2_000_000 - 1_000_000 - terms["buyer_fee"], "escrow": 0}
    assert await market.balances(market.vendor) == {"available": 1_000_000 - terms["vendor_fee"], "escrow": 0}
    assert await market.fees_balance() == fee and fee > 0
    entry = (await api.request("GET", "/v1/ledger/entries", buyer, params={"start": body["certificate_index"], "end": body["certificate_index"] + 1})).json()["entries"]
    assert entry[0]["type"] == "certificate" and entry[0]["certificate"]["type"] == "transaction_certificate"
    assert (await api.request("POST", f"/v1/contracts/{contract_id}/confirm", buyer)).status_code == 409
    await market.verify_ledger()


async def test_free_and_subscription_plans_and_licence_limits(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "free"}, {"kind": "subscription", "price": money(50_000), "period_days": 30},
                                   licence={"purposes": ["research"], "duration_days": 365, "max_licences": 2})
    _, buyer = await market.buyer(1_000_000)
    free = (await market.order(buyer, listing, 0)).json()
    assert free["status"] == "filled"
    subscription = (await market.order(buyer, listing, 1, quantity=3)).json()
    assert subscription["status"] == "filled" and subscription["price"] == 50_000
    contract = (await api.request("GET", f"/v1/contracts/{subscription['contract_ids'][0]}", buyer)).json()["contract"]
    assert contract["amount"] == 150_000 and contract["valid_until"] - contract["created_at"] == 90 * 86_400_000
    sold_out = await market.order(buyer, listing, 0)
    assert sold_out.status_code == 409 and sold_out.json()["remaining_licences"] == 0


async def test_buyer_without_funds_is_refused_and_nothing_is_written(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(1_000_000)})
    _, buyer = await market.buyer(10_000)
    refused = await market.order(buyer, listing)
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_funds"
    assert (await api.request("GET", "/v1/contracts", buyer)).json()["items"] == []
    assert await market.balances(buyer) == {"available": 10_000, "escrow": 0}


async def test_medical_l3_needs_a_licensed_buyer(market: Market, api: Api) -> None:
    listing = await market.listing(
        {"kind": "fixed", "price": money(100_000)}, category="medical", grade="L3", personal_data=True,
        attestations={"source": "hospital records under ethics approval", "rights": ["holding", "use", "operation"], "consent": "consent records"},
    )
    _, unlicensed = await market.buyer(1_000_000)
    refused = await market.order(unlicensed, listing, purpose="research")
    assert refused.status_code == 422, refused.text
    rules = [v["rule"] for v in refused.json()["violations"]]
    assert any("qualification" in rule for rule in rules), rules
    mine = (await api.request("GET", "/v1/orders", unlicensed, params={"status": "rejected"})).json()["items"]
    assert len(mine) == 1 and mine[0]["rulebook_hash"] == refused.json()["rulebook_hash"]

    _, licensed = await market.buyer(1_000_000, qualifications=["medical-licensed"])
    assert (await market.order(licensed, listing, purpose="research")).status_code == 201


async def test_quota_book_trades_at_the_resting_price_within_the_band(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "quota", "unit": "10,000 API calls", "reference_price": money(10_000)})
    buyer_id, buyer = await market.buyer(10_000_000)
    asks = [await market.order(market.vendor, listing, side="sell", quantity=q, price=p) for q, p in ((50, 10_000), (50, 10_500))]
    assert all(a.status_code == 201 and a.json()["status"] == "open" for a in asks), [a.text for a in asks]
    book = (await api.request("GET", f"/v1/listings/{listing['id']}/book")).json()
    assert [(level["price"], level["quantity"]) for level in book["asks"]] == [(10_000, 50), (10_500, 50)]

    bought = (await market.order(buyer, listing, quantity=70, price=11_000)).json()
    assert bought["status"] == "filled" and [(f["price"], f["quantity"]) for f in bought["fills"]] == [(10_000, 50), (10_500, 20)]
    assert bought["held"] == 0
    balances = await market.balances(buyer)
    contracts = [(await api.request("GET", f"/v1/contracts/{c}", buyer)).json()["contract"] for c in bought["contract_ids"]]
    escrow = sum(c["amount"] + c["buyer_fee"] for c in contracts)
    assert balances == {"available": 10_000_000 - escrow, "escrow": escrow}

    resting = (await market.order(buyer, listing, quantity=10, price=9_000)).json()
    assert resting["status"] == "open" and resting["held"] >= 90_000
    outside = await market.order(buyer, listing, quantity=1, price=100_000)
    assert outside.status_code == 422 and "price_band" in outside.text
    trades = (await api.request("GET", f"/v1/listings/{listing['id']}/trades")).json()["items"]
    assert sorted((t["price"], t["quantity"]) for t in trades) == [(10_000, 50), (10_500, 20)]

    cancelled = await api.request("DELETE", f"/v1/orders/{resting['id']}", buyer)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await market.balances(buyer))["escrow"] == escrow

    halted = await api.request("POST", f"/v1/listings/{listing['id']}/book/halt", api.operator_key, json={"reason": "investigation"})
    assert halted.status_code == 200
    refused = await market.order(buyer, listing, quantity=1, price=10_500)
    assert refused.status_code == 409 and refused.json()["code"] == "book_halted"
    await api.request("POST", f"/v1/listings/{listing['id']}/book/resume", api.operator_key)
    assert (await market.order(buyer, listing, quantity=1, price=10_500)).json()["status"] == "filled"
    await market.verify_ledger()


async def test_sealed_bid_auction_clears_at_a_uniform_price(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing({"kind": "auction", "reserve_price": money(100_000), "licences": 2},
                                   licence={"purposes": ["research"], "duration_days": 365, "max_licences": 2})
    opened = await api.request("POST", "/v1/auctions", market.vendor, json={
        "listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "closes_at": (clock() + timedelta(hours=1)).isoformat()})
    assert opened.status_code == 201, opened.text
    auction = opened.json()
    bidders = [await market.buyer(1_000_000) for _ in range(3)]
    bids = []
    for (_, key), price in zip(bidders, (300_000, 200_000, 150_000), strict=True):
        placed = await market.order(key, listing, price=price)
        assert placed.status_code == 201 and placed.json()["status"] == "open", placed.text
        bids.append(placed.json())
    seen = (await api.request("GET", f"/v1/auctions/{auction['id']}")).json()
    assert seen["bids"] == 3 and seen["winners"] is None and seen["price"] is None
    early = await api.request("POST", f"/v1/auctions/{auction['id']}/close", market.vendor)
    assert early.status_code == 409

    clock.advance(hours=1)
    closed = (await api.request("POST", f"/v1/auctions/{auction['id']}/close", market.vendor)).json()
    assert closed["status"] == "closed" and len(closed["winners"]) == 2
    assert closed["price"] in (200_000, 150_000)  # nth or (n+1)th highest bid, as the rules say
    won = (await api.request("GET", f"/v1/orders/{bids[0]['id']}", bidders[0][1])).json()
    lost = (await api.request("GET", f"/v1/orders/{bids[2]['id']}", bidders[2][1])).json()
    assert won["status"] == "won" and len(won["contract_ids"]) == 1 and lost["status"] == "lost"
    assert await market.balances(bidders[2][1]) == {"available": 1_000_000, "escrow": 0}
    contract = (await api.request("GET", f"/v1/contracts/{won['contract_ids'][0]}", bidders[0][1])).json()["contract"]
    assert contract["unit_price"] == closed["price"]
    await market.verify_ledger()


async def test_dispute_refund_and_automatic_confirmation(market: Market, api: Api, clock: MovableClock) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(300_000)})
    _, buyer = await market.buyer(1_000_000)
    first = (await market.order(buyer, listing)).json()["contract_ids"][0]
    second = (await market.order(buyer, listing)).json()["contract_ids"][0]

    disputed = await api.request("POST", f"/v1/contracts/{first}/dispute", buyer, json={"reason": "the data never arrived"})
    assert disputed.status_code == 200 and disputed.json()["status"] == "disputed"
    assert (await api.request("POST", f"/v1/contracts/{first}/confirm", buyer)).status_code == 409
    refunded = await api.request("POST", f"/v1/contracts/{first}/resolve", api.operator_key, json={"outcome": "refund", "reason": "no delivery"})
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"

    clock.advance(days=30)
    db = Database(api.settings)
    try:
        done = await sweep(db, Ledger(api.settings), RulebookCache(), clock())
    finally:
        await db.dispose()
    assert done["contracts_settled"] == 1
    assert (await api.request("GET", f"/v1/contracts/{second}", buyer)).json()["status"] == "settled"
    fees = (await api.request("GET", f"/v1/contracts/{second}", buyer)).json()["contract"]
    assert (await market.balances(buyer))["available"] == 1_000_000 - 300_000 - fees["buyer_fee"]
    await market.verify_ledger()


async def test_entitlement_verifies_from_the_command_line(market: Market, api: Api, clock: MovableClock, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    listing = await market.listing({"kind": "fixed", "price": money(10_000)})
    _, buyer = await market.buyer(100_000)
    contract_id = (await market.order(buyer, listing)).json()["contract_ids"][0]
    clock.now = max(clock.now, datetime.now(UTC))  # the command line checks the token against the real clock
    token = (await api.request("POST", f"/v1/contracts/{contract_id}/token", buyer)).json()["token"]
    keys = tmp_path / "keys.json"
    keys.write_bytes((await api.request("GET", "/v1/ledger/keys")).content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "exchange.cli", "entitlements", "verify", *extra, "--keys", str(keys)],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)

    good = verify(token, "--audience", market.vendor_id)
    assert good.returncode == 0 and contract_id in good.stdout, good.stderr
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    assert verify(forged).returncode == 1
    assert verify(token, "--audience", "par_someone_else").returncode == 1


async def test_dry_run_reports_open_orders_refused_and_fee_changes(market: Market, api: Api) -> None:
    from exchange.settings import shipped_rules_dir

    quota = await market.listing({"kind": "quota", "unit": "1 GB", "reference_price": money(10_000)})
    fixed = await market.listing({"kind": "fixed", "price": money(1_000_000)})
    _, buyer = await market.buyer(5_000_000)
    resting = (await market.order(buyer, quota, quantity=5, price=9_000)).json()
    assert resting["status"] == "open"
    assert (await market.order(buyer, fixed)).status_code == 201

    trading_toml = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8").replace("price_band_bps = 2000", "price_band_bps = 500")
    fees_toml = (shipped_rules_dir() / "fees.toml").read_text(encoding="utf-8").replace("vendor_bps = 100", "vendor_bps = 200", 1)
    report = await api.request("POST", "/v1/rules/dry-run", api.operator_key, json={"files": {"trading.toml": trading_toml, "fees.toml": fees_toml}})
    assert report.status_code == 200, report.text
    body = report.json()
    assert [o["order_id"] for o in body["orders"]] == [resting["id"]]
    assert body["orders"][0]["violations"][0]["rule"] == "trading.quota.price_band"
    assert body["fees"]["contracts"] == 1
    assert body["fees"]["vendor_fees_candidate"] == 2 * body["fees"]["vendor_fees_active"] > 0
    [vendor_delta] = body["fees"]["by_participant"]
    assert vendor_delta["participant_id"] == market.vendor_id and vendor_delta["delta"] == body["fees"]["vendor_fees_active"]
    assert [o["order_id"] for o in body["replayed_orders"]] == [resting["id"]]  # placed at 9,000: outside the narrower band


async def test_sessions_and_roles_govern_who_trades_when(market: Market, api: Api, clock: MovableClock) -> None:
    from exchange.settings import shipped_rules_dir

    listing = await market.listing({"kind": "quota", "unit": "1 GB", "reference_price": money(10_000)})
    _, buyer = await market.buyer(1_000_000)
    resting = (await market.order(buyer, listing, quantity=1, price=9_000)).json()
    assert resting["expires_at"] is not None  # a resting order lives at most the rules' longest lifetime

    regulator = (await api.participant("regulator"))[1]
    assert (await api.request("GET", f"/v1/orders/{resting['id']}", regulator)).status_code == 200
    assert (await market.order(regulator, listing, quantity=1, price=9_000)).status_code == 403
    other_buyer = (await market.buyer())[1]
    assert (await api.request("GET", f"/v1/orders/{resting['id']}", other_buyer)).status_code == 404
    assert (await api.request("DELETE", f"/v1/orders/{resting['id']}", other_buyer)).status_code == 404

    today = clock().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    trading_toml = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8").replace("holidays = []", f'holidays = ["{today}"]')
    applied = await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"trading.toml": trading_toml}, "reason": "public holiday"})
    assert applied.status_code == 200, applied.text
    refused = await market.order(buyer, listing, quantity=1, price=9_000)
    assert refused.status_code == 422 and refused.json()["violations"][0]["rule"] == "trading.sessions.holidays"
    clock.advance(days=1)
    assert (await market.order(buyer, listing, quantity=1, price=9_000)).status_code == 201
