"""An order and the record of its Idempotency-Key are written in one transaction: when the record
cannot be written, the order is not placed either (no order, no hold, no ledger entry), and the
same request sent again places it once. A trigger makes the record's insert fail. On PostgreSQL
the order desk takes the order (its batch fails, then the order goes alone); on SQLite the
single-order path does. The crash test (tests/reliability/test_crash.py) catches a record written
apart from its order only when a kill lands between the two writes; this catches it every time."""

from __future__ import annotations

import sqlalchemy as sa

from exchange.db import Database
from tests.harness import Api
from tests.orders.conftest import Market, money

REFUSE = {
    "postgresql": [
        "CREATE FUNCTION refuse_record() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        "CREATE TRIGGER refuse_record BEFORE INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION refuse_record()",
    ],
    "sqlite": ["CREATE TRIGGER refuse_record BEFORE INSERT ON idempotency_keys BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
}
ALLOW = {"postgresql": ["DROP TRIGGER refuse_record ON idempotency_keys", "DROP FUNCTION refuse_record()"], "sqlite": ["DROP TRIGGER refuse_record"]}


async def _execute(api: Api, statements: dict[str, list[str]]) -> None:
    db = Database(api.settings)
    try:
        async with db.write() as session:
            for statement in statements[session.bind.dialect.name]:
                await session.execute(sa.text(statement))
    finally:
        await db.dispose()


async def test_an_order_whose_idempotency_record_cannot_be_written_is_not_placed(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "quota", "unit": "10,000 API calls", "reference_price": money(10_000)})
    _, buyer = await market.buyer(10**9)
    before = await market.balances(buyer)
    order = {"listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "side": "buy", "type": "limit", "price": 9_900,
             "quantity": 2, "time_in_force": "gtc"}

    await _execute(api, REFUSE)
    try:
        refused = await api.request("POST", "/v1/orders", buyer, json=order, headers={"Idempotency-Key": "once"})
    finally:
        await _execute(api, ALLOW)
    assert refused.status_code >= 500 and refused.headers["content-type"].startswith("application/problem+json"), refused.text
    assert (await api.request("GET", "/v1/orders", buyer)).json()["items"] == []
    assert await market.balances(buyer) == before

    placed = await api.request("POST", "/v1/orders", buyer, json=order, headers={"Idempotency-Key": "once"})
    assert placed.status_code == 201 and "Idempotent-Replayed" not in placed.headers, placed.text
    again = await api.request("POST", "/v1/orders", buyer, json=order, headers={"Idempotency-Key": "once"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == placed.json()["id"]
    assert [o["id"] for o in (await api.request("GET", "/v1/orders", buyer)).json()["items"]] == [placed.json()["id"]]
    await market.verify_ledger()
