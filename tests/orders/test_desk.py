"""The order desk places quota orders that arrive together in one transaction: each must trade,
refuse and replay exactly as it would alone. The pure matching core, fed the same orders in the
order the desk placed them (their ids are monotonic within the process), is the reference. The
desk runs on PostgreSQL only."""

from __future__ import annotations

import asyncio
import base64
import random
import re
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
import uvicorn

from exchange.app import create_app
from exchange.auth import authenticate
from exchange.core.canonical import canonical_bytes, sha256_hex
from exchange.db import Database
from exchange.orders import desk, matching, service, surveillance, windows
from exchange.rulebook import store
from exchange.rulebook.store import RulebookCache
from exchange.settings import shipped_rules_dir
from exchange.settlement.ledger import Ledger
from exchange.settlement.signing import load_public_pem, verify_signature
from exchange.tables import Book, Contract, Listing
from tests.conftest import MovableClock
from tests.harness import Api, until_a_statement_waits_for_a_lock
from tests.orders.conftest import Market, money

pytestmark = pytest.mark.postgres_only


class Served:
    """A second app on the test's database, served on a real socket in the test's own event
    loop, so that requests sent together reach its desk together (the test client runs one
    request at a time)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def order(self, key: str, listing: dict[str, Any], idempotency_key: str | None = None, **body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}", **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
        full = {"listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], **body}
        return await self.client.post("/v1/orders", json=full, headers=headers)

    async def cancel(self, key: str, order_id: str) -> httpx.Response:
        return await self.client.delete(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
async def served(api: Api, clock: MovableClock) -> AsyncIterator[Served]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    # Its head signer sleeps through the test: the test client blocks this loop while it runs a
    # request, and on SQLite a write this loop had begun would then lock that request out.
    settings = msgspec.structs.replace(api.settings, ledger_head_interval_ms=3_600_000)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, clock=clock), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=60) as client:
            yield Served(client)
    finally:
        server.should_exit = True
        await task


async def batch_metrics(served: Served) -> dict[str, float]:
    text = (await served.client.get("/metrics")).text
    found = {}
    for name in ("exchange_order_batch_orders_count", "exchange_order_batch_orders_sum", "exchange_order_batches_failed_total",
                 "exchange_order_batch_gathering_seconds_count", "exchange_order_batch_gathering_seconds_sum",
                 "exchange_order_batch_duration_seconds_count", "exchange_order_batch_duration_seconds_sum"):
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        found[name] = float(match.group(1)) if match else 0.0
    match = re.search(r'^exchange_order_batch_orders_bucket\{le="1.0"\} (\S+)$', text, re.MULTILINE)
    found["alone"] = float(match.group(1)) if match else 0.0
    return found


async def in_one_batch(monkeypatch: pytest.MonkeyPatch, calls: list[Any]) -> list[httpx.Response]:
    """Send the requests at once; the desk's batch waits for all of them, so that they meet in it."""
    linger = desk.OrderDesk._linger

    async def together(self: desk.OrderDesk) -> None:
        for _ in range(2_000):
            if len(self._waiting) >= len(calls):
                return
            await asyncio.sleep(0.001)
        await linger(self)

    monkeypatch.setattr(desk.OrderDesk, "_linger", together)
    return list(await asyncio.gather(*calls))


async def quota_listing(market: Market) -> dict[str, Any]:
    return await market.listing({"kind": "quota", "unit": "10,000 API calls", "reference_price": money(10_000)})


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_orders_placed_together_trade_as_if_placed_one_at_a_time(market: Market, api: Api, served: Served, clock: MovableClock, seed: int) -> None:
    listing = await quota_listing(market)
    buyers = [(await market.buyer(10**10))[1] for _ in range(4)]
    reference = matching.Book(band=(8_000, 12_000), self_trade="cancel_taker")
    rng = random.Random(seed)
    seq = 0
    for _ in range(8):
        bodies: list[tuple[str, dict[str, Any]]] = []
        for _ in range(rng.randint(3, 12)):
            sell = rng.random() < 0.45
            tif = rng.choice(["gtc", "gtc", "ioc", "fok"])
            order_type = "market" if tif != "gtc" and rng.random() < 0.2 else "limit"
            body: dict[str, Any] = {"side": "sell" if sell else "buy", "quantity": rng.randint(1, 9), "time_in_force": tif, "type": order_type}
            if order_type == "limit":
                body["price"] = rng.randrange(9_800, 10_300, 50)
            bodies.append((market.vendor if sell else rng.choice(buyers), body))
        responses = await asyncio.gather(*(served.order(key, listing, **body) for key, body in bodies))
        assert [r.status_code for r in responses] == [201] * len(bodies), [r.text for r in responses if r.status_code != 201]
        for placed, body in sorted(((r.json(), b) for r, (_, b) in zip(responses, bodies, strict=True)), key=lambda pair: pair[0]["id"]):
            seq += 1
            outcome = reference.submit(matching.Order(
                id=placed["id"], owner=placed["participant_id"], side=matching.Side(body["side"]), type=matching.OrderType(body["type"]),
                price=body.get("price"), quantity=body["quantity"], time_in_force=matching.TimeInForce(body["time_in_force"]), seq=seq,
            ))
            assert [(f["price"], f["quantity"]) for f in placed["fills"]] == [(f.price, f.quantity) for f in outcome.fills], (placed, body)
            assert placed["status"] == ("open" if outcome.rested else "filled" if outcome.remaining == 0 else "cancelled"), (placed, body)
            assert placed["remaining"] == outcome.remaining

    book = (await api.request("GET", f"/v1/listings/{listing['id']}/book", params={"levels": 50})).json()
    depth = reference.depth(50)
    assert [(l["price"], l["quantity"], l["orders"]) for l in book["asks"]] == [tuple(level) for level in depth["asks"]]
    assert [(l["price"], l["quantity"], l["orders"]) for l in book["bids"]] == [tuple(level) for level in depth["bids"]]
    await market.verify_ledger()
    await market.fees_balance()  # every balance sums to zero
    db = Database(api.settings)
    try:
        async with db.read() as session:  # the batch's circuit breaker reads every book's window at once, alike
            rules = await store.active(session, RulebookCache(), clock.now)
            alone = await surveillance.price_window(session, rules, listing["id"], clock.now)
            assert alone.count > 1 and await surveillance.price_windows(session, rules, [listing["id"], "lst_none"], clock.now) == {
                listing["id"]: alone, "lst_none": surveillance.PriceWindow()}
            # Every contract names the listing revision it was formed on (hashed once per book, not per contract).
            stored = await session.get(Listing, listing["id"])
            assert stored is not None
            names = {c.content["listing_sha256"] for c in (await session.execute(sa.select(Contract).where(Contract.listing_id == listing["id"]))).scalars()}
            assert names == {sha256_hex(stored.content)}
    finally:
        await db.dispose()
    counts = await batch_metrics(served)
    assert counts["exchange_order_batch_orders_count"] > counts["alone"]  # some batches held more than one order
    assert counts["exchange_order_batches_failed_total"] == 0
    # Every batch's time is kept, split into gathering its requests and placing them.
    batches = counts["exchange_order_batch_orders_count"]
    assert counts["exchange_order_batch_gathering_seconds_count"] == counts["exchange_order_batch_duration_seconds_count"] == batches
    assert counts["exchange_order_batch_duration_seconds_sum"] > 0 and counts["exchange_order_batch_gathering_seconds_sum"] > 0


async def test_a_refused_order_in_a_batch_is_refused_alone_and_the_others_trade(market: Market, api: Api, served: Served) -> None:
    listing = await quota_listing(market)
    _, rich = await market.buyer(10**9)
    _, poor = await market.buyer(5_000)
    assert (await market.order(market.vendor, listing, side="sell", type="limit", price=10_000, quantity=50, time_in_force="gtc")).status_code == 201
    calls = [
        served.order(rich, listing, side="buy", type="limit", price=10_000, quantity=2, time_in_force="ioc"),
        served.order(poor, listing, side="buy", type="limit", price=10_000, quantity=2, time_in_force="ioc"),  # cannot pay
        served.order(rich, listing, side="buy", type="limit", price=50_000, quantity=1, time_in_force="ioc"),  # outside the band
        served.order(rich, listing, side="sell", type="limit", price=10_000, quantity=1, time_in_force="ioc"),  # a buyer does not sell
        served.order(rich, listing, side="buy", type="limit", price=10_000, quantity=3, time_in_force="gtc"),
    ]
    responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [201, 422, 422, 403, 201], [r.text for r in responses]
    assert responses[1].json()["code"] == "insufficient_funds"
    assert "trading.quota.price_band" in responses[2].json()["detail"]
    assert [f["quantity"] for f in responses[0].json()["fills"]] == [2] and responses[4].json()["status"] == "filled"
    rejected = (await api.request("GET", "/v1/orders", rich, params={"status": "rejected"})).json()["items"]
    assert [o["price"] for o in rejected] == [50_000]  # the refusal is kept with its rules, as for an order alone
    assert (await market.balances(poor)) == {"available": 5_000, "escrow": 0}
    assert (await batch_metrics(served))["exchange_order_batches_failed_total"] == 0  # refused alone, not by failing the batch
    await market.verify_ledger()


async def test_a_batch_charges_each_party_the_fee_of_its_monthly_volume(market: Market, api: Api, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**10)
    assert (await market.order(market.vendor, listing, side="sell", type="limit", price=10_000, quantity=1_050, time_in_force="gtc")).status_code == 201
    # The vendor trades past the quota fee tier (100,000 yuan a month: 50 bps instead of 100).
    first = await market.order(buyer, listing, side="buy", type="limit", price=10_000, quantity=1_000, time_in_force="ioc")
    assert first.status_code == 201 and first.json()["status"] == "filled", first.text
    responses = await in_one_batch(monkeypatch, [
        served.order(buyer, listing, side="buy", type="limit", price=10_000, quantity=10, time_in_force="ioc") for _ in range(3)])
    assert [r.status_code for r in responses] == [201] * 3, [r.text for r in responses]
    contracts = [(await api.request("GET", f"/v1/contracts/{c}", buyer)).json() for r in responses for c in r.json()["contract_ids"]]
    assert [(c["contract"]["amount"], c["contract"]["vendor_fee"], c["contract"]["buyer_fee"]) for c in contracts] == [(100_000, 500, 0)] * 3  # 100 bps would be 1,000
    assert (await batch_metrics(served))["exchange_order_batches_failed_total"] == 0
    await market.verify_ledger()


async def test_one_idempotency_key_in_one_batch_places_one_order(market: Market, api: Api, served: Served) -> None:
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    body = {"listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "side": "buy", "type": "limit", "price": 9_900,
            "quantity": 2, "time_in_force": "gtc"}
    same = [served.client.post("/v1/orders", json=body, headers={"Authorization": f"Bearer {buyer}", "Idempotency-Key": "k-1"}) for _ in range(4)]
    other = served.client.post("/v1/orders", json={**body, "quantity": 3}, headers={"Authorization": f"Bearer {buyer}", "Idempotency-Key": "k-1"})
    responses = await asyncio.gather(*same, other)
    firsts = [r for r in responses[:4] if r.headers.get("Idempotent-Replayed") != "true"]
    assert [r.status_code for r in responses[:4]] == [201] * 4 and len(firsts) == 1
    assert {r.json()["id"] for r in responses[:4]} == {firsts[0].json()["id"]}
    assert all(r.content == firsts[0].content for r in responses[:4])
    assert responses[4].status_code == 409 and responses[4].json()["code"] == "idempotency_key_reused"
    assert len((await api.request("GET", "/v1/orders", buyer, params={"status": "open"})).json()["items"]) == 1


async def test_a_batch_replays_a_key_its_caller_used_before_and_only_that_caller_s(
    market: Market, api: Api, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desk finds earlier answers by the caller's API key and the Idempotency-Key: the same
    request again is answered with the stored response; another body under the key is refused
    (alone); another participant's request under the same Idempotency-Key is its own order."""
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    _, other = await market.buyer(10**9)
    body = {"side": "buy", "type": "limit", "price": 9_900, "quantity": 2, "time_in_force": "gtc"}
    first = await served.order(buyer, listing, idempotency_key="k-9", **body)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    in_batches = (await batch_metrics(served))["exchange_order_batch_orders_sum"]
    again, changed, theirs = await in_one_batch(monkeypatch, [
        served.order(buyer, listing, idempotency_key="k-9", **body),
        served.order(buyer, listing, idempotency_key="k-9", **{**body, "quantity": 3}),
        served.order(other, listing, idempotency_key="k-9", **body),
    ])
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    assert changed.status_code == 409 and changed.json()["code"] == "idempotency_key_reused"
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers and theirs.json()["id"] != first.json()["id"]
    assert (await batch_metrics(served))["exchange_order_batch_orders_sum"] == in_batches + 2  # the replay and the new order
    assert len((await api.request("GET", "/v1/orders", buyer, params={"status": "open"})).json()["items"]) == 1


async def test_a_batch_that_fails_leaves_every_order_to_be_placed_alone(market: Market, api: Api, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the ledger is unreachable")

    monkeypatch.setattr(desk, "post_journals", broken)
    calls = [served.order(buyer, listing, side="buy", type="limit", price=9_500 + 10 * n, quantity=1, time_in_force="gtc") for n in range(6)]
    responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [201] * 6
    assert len({r.json()["id"] for r in responses}) == 6
    assert (await batch_metrics(served))["exchange_order_batches_failed_total"] >= 1
    await market.verify_ledger()


async def test_the_desk_counts_orders_against_the_request_rate(market: Market, api: Api, served: Served) -> None:
    trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8").replace("requests_per_minute = 1200", "requests_per_minute = 3")
    assert (await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"trading.toml": trading}, "reason": "tight"})).status_code == 200
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    calls = [served.order(buyer, listing, side="buy", type="limit", price=9_500, quantity=1, time_in_force="gtc") for _ in range(5)]
    statuses = sorted(r.status_code for r in await asyncio.gather(*calls))
    assert statuses == [201, 201, 201, 429, 429]


async def test_cancels_sent_with_orders_are_applied_before_them(
    market: Market, api: Api, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = await quota_listing(market)
    _, first_buyer = await market.buyer(10**9)
    _, second_buyer = await market.buyer(10**9)
    ask = (await market.order(market.vendor, listing, side="sell", type="limit", price=10_000, quantity=5, time_in_force="gtc")).json()
    took = await market.order(second_buyer, listing, side="buy", type="limit", price=10_000, quantity=2, time_in_force="ioc")
    assert took.json()["fills"] == [{**took.json()["fills"][0], "quantity": 2}]
    high_bid = (await market.order(first_buyer, listing, side="buy", type="limit", price=9_900, quantity=4, time_in_force="gtc")).json()
    low_bid = (await market.order(first_buyer, listing, side="buy", type="limit", price=9_800, quantity=2, time_in_force="gtc")).json()
    third_bid = (await market.order(first_buyer, listing, side="buy", type="limit", price=9_000, quantity=1, time_in_force="gtc")).json()
    held_before = (await market.balances(first_buyer))["escrow"]

    calls = [
        served.order(second_buyer, listing, side="buy", type="limit", price=10_000, quantity=3, time_in_force="ioc"),  # the ask is gone first
        served.cancel(market.vendor, ask["id"]),
        served.cancel(first_buyer, high_bid["id"]),
        served.cancel(first_buyer, high_bid["id"]),  # one of the two is late
        served.cancel(second_buyer, low_bid["id"]),  # not theirs
        served.cancel(api.operator_key, third_bid["id"]),  # alone, as an operator's
        served.order(market.vendor, listing, side="sell", type="limit", price=9_800, quantity=2, time_in_force="ioc"),  # meets the low bid
    ]
    bought, ask_gone, high_gone, high_again, not_theirs, by_operator, sold = await in_one_batch(monkeypatch, calls)

    assert bought.status_code == 201 and bought.json()["fills"] == [] and bought.json()["status"] == "cancelled"
    assert ask_gone.status_code == 200, ask_gone.text
    assert (ask_gone.json()["status"], ask_gone.json()["remaining"], ask_gone.json()["reason"]) == ("cancelled", 3, "cancelled by its owner")
    assert [(f["price"], f["quantity"]) for f in ask_gone.json()["fills"]] == [(10_000, 2)]  # it answers with the trades it made before
    assert sorted([high_gone.status_code, high_again.status_code]) == [200, 409]
    assert not_theirs.status_code == 404 and not_theirs.headers["content-type"].startswith("application/problem+json")
    assert by_operator.status_code == 200 and by_operator.json()["reason"].startswith("cancelled by operator")
    assert sold.status_code == 201 and [(f["price"], f["quantity"]) for f in sold.json()["fills"]] == [(9_800, 2)]

    counts = await batch_metrics(served)
    assert counts["exchange_order_batches_failed_total"] == 0
    assert counts["exchange_order_batch_orders_sum"] == 4  # the two orders and the owners' first cancels; the rest went alone
    contract = (await api.request("GET", f"/v1/contracts/{sold.json()['contract_ids'][0]}", first_buyer)).json()["contract"]
    released = high_bid["held"] + third_bid["held"] + low_bid["held"]  # the low bid's hold paid its contract
    assert (await market.balances(first_buyer))["escrow"] == held_before - released + contract["amount"] + contract["buyer_fee"]
    await market.verify_ledger()
    await market.fees_balance()


async def test_cancels_of_orders_the_desk_placed_lock_their_books_without_reading_them_first(
    market: Market, api: Api, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    _, other = await market.buyer(10**9)
    # Placed by the served app's desk, which remembers their book.
    resting = [(await served.order(buyer, listing, side="buy", type="limit", price=9_000 + 100 * n, quantity=2, time_in_force="gtc")).json()
               for n in range(3)]
    assert all(o["status"] == "open" for o in resting), resting
    # The best bid is filled through the other app while its cancel is on its way.
    sold = await market.order(market.vendor, listing, side="sell", type="limit", price=9_200, quantity=2, time_in_force="ioc")
    assert [(f["price"], f["quantity"]) for f in sold.json()["fills"]] == [(9_200, 2)]
    held_before = (await market.balances(buyer))["escrow"]  # the filled bid's hold is its contract's escrow now

    async def no_read_first(*_: Any, **__: Any) -> Any:
        raise AssertionError("the cancels' books are remembered: nothing to read before the lock")

    monkeypatch.setattr(desk.OrderDesk, "_cancellable", no_read_first)
    in_batches = (await batch_metrics(served))["exchange_order_batch_orders_sum"]
    filled, first, not_theirs = await in_one_batch(monkeypatch, [
        served.cancel(buyer, resting[2]["id"]),
        served.cancel(buyer, resting[0]["id"]),
        served.cancel(other, resting[1]["id"]),
    ])
    assert filled.status_code == 409, filled.text  # read under the book's lock: filled, not cancellable
    assert first.status_code == 200 and first.json()["status"] == "cancelled", first.text
    assert not_theirs.status_code == 404
    assert (await market.balances(buyer))["escrow"] == held_before - resting[0]["held"]
    counts = await batch_metrics(served)
    assert counts["exchange_order_batch_orders_sum"] == in_batches + 1  # the owner's cancel of the open bid; the others went alone
    assert counts["exchange_order_batches_failed_total"] == 0
    await market.verify_ledger()


async def test_a_batch_reads_past_the_first_page_of_a_book(market: Market, api: Api, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = await quota_listing(market)
    buyers = [(await market.buyer(10**9))[1] for _ in range(3)]
    for n in range(12):  # more asks than the first page the batch reads of every book at once
        placed = await market.order(market.vendor, listing, side="sell", type="limit", price=9_900 + 10 * n, quantity=1, time_in_force="gtc")
        assert placed.status_code == 201
    calls = [served.order(key, listing, side="buy", type="limit", price=11_000, quantity=quantity, time_in_force="ioc")
             for key, quantity in zip(buyers, (5, 4, 2), strict=True)]
    responses = await in_one_batch(monkeypatch, calls)
    fills = sorted((f["price"], f["quantity"]) for r in responses for f in r.json()["fills"])
    assert fills == [(9_900 + 10 * n, 1) for n in range(11)], fills
    assert (await batch_metrics(served))["exchange_order_batch_orders_sum"] == 3
    book = (await api.request("GET", f"/v1/listings/{listing['id']}/book")).json()
    assert [(level["price"], level["quantity"]) for level in book["asks"]] == [(10_010, 1)]
    await market.verify_ledger()


async def test_the_windows_kept_in_memory_follow_trades_made_anywhere(market: Market, api: Api, clock: MovableClock) -> None:
    """`surveillance.cached_windows` (the desk's) equals the scan of every trade (`price_windows`)
    as trades are made by another process (here the test client's app), by an auction's close (its
    trades take the book's next number, not the bids' old ones), and as trades leave the window."""
    quota = await quota_listing(market)
    auctioned = await market.listing({"kind": "auction", "reserve_price": money(100_000), "licences": 2},
                                     licence={"purposes": ["research"], "duration_days": 365, "max_licences": 2})
    opened = await api.request("POST", "/v1/auctions", market.vendor, json={
        "listing_id": auctioned["id"], "plan_id": auctioned["plans"][0]["id"], "closes_at": (clock() + timedelta(hours=1)).isoformat()})
    assert opened.status_code == 201, opened.text
    for price in (300_000, 200_000, 150_000):
        assert (await market.order((await market.buyer(1_000_000))[1], auctioned, price=price)).status_code == 201
    _, buyer = await market.buyer(10**9)
    kept = windows.TradeWindows()
    db = Database(api.settings)

    async def trade(prices: list[int]) -> None:
        for price in prices:
            assert (await market.order(market.vendor, quota, side="sell", type="limit", price=price, quantity=1, time_in_force="gtc")).status_code == 201
            assert (await market.order(buyer, quota, side="buy", type="limit", price=price, quantity=1, time_in_force="ioc")).json()["fills"]

    async def compared() -> dict[str, surveillance.PriceWindow]:
        async with db.read() as session:
            rules = await store.active(session, RulebookCache(), clock.now)
            numbered = {listing["id"]: 0 for listing in (quota, auctioned)}
            for book in (await session.execute(sa.select(Book).where(Book.listing_id.in_(sorted(numbered))))).scalars():  # type: ignore[attr-defined]
                numbered[book.listing_id] = book.seq
            cached = await surveillance.cached_windows(session, kept, rules, numbered, clock.now)
            assert cached == await surveillance.price_windows(session, rules, sorted(numbered), clock.now)
            return cached

    try:
        await trade([10_000, 10_100])
        assert (await compared())[quota["id"]].count == 2
        await trade([9_900])
        assert (await compared())[quota["id"]] == surveillance.PriceWindow(first=10_000, low=9_900, high=10_100, count=3)
        clock.advance(hours=1)
        closed = await api.request("POST", f"/v1/auctions/{opened.json()['id']}/close", market.vendor)
        assert closed.status_code == 200 and len(closed.json()["winners"]) == 2
        assert (await compared())[auctioned["id"]].count == 2
        await trade([10_200])
        assert (await compared())[quota["id"]] == surveillance.PriceWindow(first=10_200, low=10_200, high=10_200, count=1)  # the rest left the window
    finally:
        await db.dispose()


async def test_the_desk_s_windows_keep_its_own_trades_and_read_only_others(market: Market, api: Api, served: Served) -> None:
    """The desk adds each committed batch's trades to its books' windows, so a batch after one of
    its own reads no trade back; the breaker still sees every trade of the window: the desk's
    earlier batches' and another process's."""
    trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8").replace("circuit_breaker_bps = 1000", "circuit_breaker_bps = 250")
    assert (await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"trading.toml": trading}, "reason": "watch"})).status_code == 200
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    for price in (10_000, 10_100, 10_200, 10_300):
        assert (await market.order(market.vendor, listing, side="sell", type="limit", price=price, quantity=1, time_in_force="gtc")).status_code == 201
    trade_reads: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM trades" in statement:
            trade_reads.append(statement)

    async def bought(price: int) -> dict[str, Any]:
        placed = await served.order(buyer, listing, side="buy", type="limit", price=price, quantity=1, time_in_force="ioc")
        assert placed.status_code == 201, placed.text
        return placed.json()  # type: ignore[no-any-return]

    assert (await bought(10_000))["fills"]  # the desk's first batch on the book reads its window
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", spy)
    try:
        assert (await bought(10_100))["fills"]
        assert trade_reads == []  # only the desk traded since: its window has every trade
        # Another process trades (10,200: 200 bps from the first, under the limit); the desk's
        # next batch reads that trade, and its own 10,300 then moves the window 300 bps.
        assert (await market.order(buyer, listing, side="buy", type="limit", price=10_200, quantity=1, time_in_force="ioc")).json()["fills"]
        trade_reads.clear()
        assert (await bought(10_300))["fills"]
        assert len(trade_reads) == 1, trade_reads
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", spy)
    book = (await api.request("GET", f"/v1/listings/{listing['id']}/book")).json()
    assert book["status"] == "halted", book  # first 10,000 (the desk's first batch), last 10,300
    await market.verify_ledger()


async def test_a_batch_whose_book_lock_waited_reads_its_facts_again(
    market: Market, api: Api, served: Served, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch reads its rules and funds facts in the statement that locks its books; when a
    lock waited for another writer of the book, those facts (read as of the statement's start)
    are read again after it."""
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    read_again: list[int] = []
    facts = desk.OrderDesk._facts.__func__  # type: ignore[attr-defined]

    async def counted(cls: type[desk.OrderDesk], *args: Any) -> Any:
        read_again.append(1)
        return await facts(cls, *args)

    monkeypatch.setattr(desk.OrderDesk, "_facts", classmethod(counted))

    async def bid() -> httpx.Response:
        return await served.order(buyer, listing, side="buy", type="limit", price=9_000, quantity=1, time_in_force="gtc")

    assert (await bid()).status_code == 201
    assert read_again == []  # nobody else held the book: the facts came with the lock
    db = Database(api.settings)
    try:
        async with db.write() as holder:
            await service.lock_book(holder, listing["id"], clock.now, next_seq=True)  # another writer takes a number
            waiting = asyncio.create_task(bid())
            await until_a_statement_waits_for_a_lock(db, "seen_version")
        placed = await waiting
    finally:
        await db.dispose()
    assert placed.status_code == 201 and placed.json()["status"] == "open", placed.text
    assert read_again == [1]
    assert (await batch_metrics(served))["exchange_order_batches_failed_total"] == 0
    await market.verify_ledger()


async def test_a_batch_whose_book_lock_waited_for_a_cancel_reads_the_book_again(market: Market, api: Api, served: Served, clock: MovableClock) -> None:
    """The batch reads the book's resting orders in the statement that locks the book, as of the
    statement's start. A cancel takes no order number, only the lock: when the batch's lock
    waited for one, the book is read again after it, and the batch's buy does not fill against
    the order cancelled meanwhile."""
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    resting = await market.order(market.vendor, listing, side="sell", type="limit", price=10_000, quantity=1, time_in_force="gtc")
    assert resting.status_code == 201, resting.text
    db = Database(api.settings)
    try:
        async with db.write() as holder:
            vendor = await authenticate(holder, f"Bearer {market.vendor}")
            assert vendor is not None
            cancelled = await service.cancel(holder, Ledger(api.settings), vendor, resting.json()["id"], clock.now)  # locks the book, takes no number
            assert cancelled.status == "cancelled"
            buying = asyncio.create_task(served.order(buyer, listing, side="buy", type="limit", price=10_000, quantity=1, time_in_force="ioc"))
            await until_a_statement_waits_for_a_lock(db, "seen_version")
        bought = await buying
    finally:
        await db.dispose()
    assert bought.status_code == 201, bought.text
    assert bought.json()["fills"] == [] and bought.json()["status"] == "cancelled", bought.json()
    sell = (await api.request("GET", f"/v1/orders/{resting.json()['id']}", market.vendor)).json()
    assert sell["status"] == "cancelled" and sell["remaining"] == 1, sell
    assert (await batch_metrics(served))["exchange_order_batches_failed_total"] == 0
    await market.verify_ledger()


async def test_the_order_rate_rule_counts_orders_before_and_within_a_batch(market: Market, api: Api, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8").replace("rate_per_minute_max = 60", "rate_per_minute_max = 4")
    assert (await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"trading.toml": trading}, "reason": "tight"})).status_code == 200
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    _, other = await market.buyer(10**9)
    for _ in range(2):  # placed before the batch, by another process
        assert (await market.order(buyer, listing, side="buy", type="limit", price=9_500, quantity=1, time_in_force="gtc")).status_code == 201
    calls = [served.order(key, listing, side="buy", type="limit", price=9_500, quantity=1, time_in_force="gtc") for key in (buyer,) * 4 + (other,)]
    responses = await in_one_batch(monkeypatch, calls)
    assert sorted(r.status_code for r in responses[:4]) == [201, 201, 422, 422] and responses[4].status_code == 201
    refused = [r.json() for r in responses[:4] if r.status_code == 422]
    placed = [re.search(r"you placed (\d+) in the last minute", r["detail"]) for r in refused]
    assert all(found and int(found.group(1)) >= 4 for found in placed), refused  # the batch's own orders counted too


async def test_a_batch_reads_the_shadow_set_and_the_signing_key_as_they_stand(
    market: Market, api: Api, served: Served, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch reads with its callers which key signs and whether a shadow set is judging: a key
    rotated and a shadow set started by another process reach the very next batch."""
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    assert (await market.order(market.vendor, listing, side="sell", type="limit", price=10_000, quantity=50, time_in_force="gtc")).status_code == 201
    db = Database(api.settings)
    try:
        async with db.write() as session:
            rotated = await Ledger(api.settings).rotate(session, clock.now)
    finally:
        await db.dispose()
    buys = [served.order(buyer, listing, side="buy", type="limit", price=10_000, quantity=1, time_in_force="ioc") for _ in range(3)]
    placed = await in_one_batch(monkeypatch, buys)
    assert [r.status_code for r in placed] == [201] * 3, [r.text for r in placed]
    contract_ids = [c for r in placed for c in r.json()["contract_ids"]]
    assert len(contract_ids) == 3
    keys = {k["key_id"]: k["public_key_pem"] for k in (await api.request("GET", "/v1/ledger/keys")).json()["keys"]}
    for contract_id in contract_ids:
        contract = (await api.request("GET", f"/v1/contracts/{contract_id}", buyer)).json()
        assert contract["key_id"] == rotated.key_id
        # signed on another thread, once the batch had formed them all (desk._signing)
        canonical = base64.b64decode(contract["canonical"])
        assert canonical == canonical_bytes(contract["contract"])
        assert verify_signature(load_public_pem(keys[rotated.key_id]), canonical, contract["signature"])
    assert (await batch_metrics(served))["exchange_order_batch_orders_count"] >= 1  # they were a batch's

    trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8")
    started = await api.request("PUT", "/v1/rules/shadow", api.operator_key, json={"files": {"trading.toml": trading}, "reason": "watch"})
    assert started.status_code == 200, started.text
    buys = [served.order(buyer, listing, side="buy", type="limit", price=10_000, quantity=1, time_in_force="ioc") for _ in range(3)]
    assert [r.status_code for r in await in_one_batch(monkeypatch, buys)] == [201] * 3
    report = (await api.request("GET", "/v1/rules/shadow/report", api.operator_key)).json()
    assert report["shadow"]["judged"] == 3  # each went the single-order way, where the shadow set judges it
    await market.verify_ledger()


async def test_a_listing_suspended_between_batches_refuses_the_next_batch_s_orders(
    market: Market, api: Api, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desk keeps the listings it read while the catalogue version stands: a listing
    suspended by another process reaches the very next batch, whose orders for it are refused."""
    listing = await quota_listing(market)
    _, buyer = await market.buyer(10**9)
    assert (await market.order(market.vendor, listing, side="sell", type="limit", price=10_000, quantity=50, time_in_force="gtc")).status_code == 201
    buys = [served.order(buyer, listing, side="buy", type="limit", price=10_000, quantity=1, time_in_force="ioc") for _ in range(3)]
    assert [r.status_code for r in await in_one_batch(monkeypatch, buys)] == [201] * 3  # the desk now keeps the listing
    suspended = await api.request("POST", f"/v1/listings/{listing['id']}/suspend", api.operator_key, json={"reason": "checking its source"})
    assert suspended.status_code == 200, suspended.text
    buys = [served.order(buyer, listing, side="buy", type="limit", price=10_000, quantity=1, time_in_force="ioc") for _ in range(3)]
    refused = await in_one_batch(monkeypatch, buys)
    assert [r.status_code for r in refused] == [404] * 3, [r.text for r in refused]
    assert all("No listed product" in r.text for r in refused)
    resumed = await api.request("POST", f"/v1/listings/{listing['id']}/resume", api.operator_key, json={"reason": "source checked"})
    assert resumed.status_code == 200, resumed.text
    buys = [served.order(buyer, listing, side="buy", type="limit", price=10_000, quantity=1, time_in_force="ioc") for _ in range(3)]
    assert [r.status_code for r in await in_one_batch(monkeypatch, buys)] == [201] * 3
    await market.verify_ledger()
