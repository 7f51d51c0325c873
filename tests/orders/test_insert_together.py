"""`tables.write_together` of `new_rows` (the order desk's statement for a batch's new rows) stores exactly
what SQLAlchemy's own insert (a statement per model) stores: every column of every model it writes, a JSON
column's None and dict, bytes, times and server-defaulted columns alike, on PostgreSQL (one
statement) and SQLite (one executemany a model)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from exchange.db import Database
from exchange.tables import Contract, IdempotencyRecord, Order, Trade, new_row, new_rows, write_together
from tests.harness import Api
from tests.orders.conftest import Market

MODELS = (Order, Contract, Trade, IdempotencyRecord)


def copy(row: Any, suffix: str) -> Any:
    """`row` as a new row of its model, its own id and the ids it names made unique by `suffix`."""
    table = type(row).__table__  # type: ignore[attr-defined]
    values = {column.key: row.__dict__[column.key] for column in table.columns}
    for key in ("id", "order_id", "contract_id", "buy_order_id", "sell_order_id", "key"):
        if isinstance(values.get(key), str):
            values[key] += suffix
    return new_row(type(row), **values)


def stored(row: Any, suffix: str) -> dict[str, Any]:
    """A stored row's values, with `suffix` taken off the ids `copy` changed."""
    values = dict(row._mapping)
    for key, value in values.items():
        if isinstance(value, str) and value.endswith(suffix):
            values[key] = value[: -len(suffix)]
    return values


async def test_rows_inserted_together_are_stored_as_rows_inserted_one_model_at_a_time(market: Market, api: Api) -> None:
    listing = await market.listing({"kind": "quota", "unit": "10,000 API calls", "reference_price": {"amount": 10_000, "currency": "CNY"}})
    _, buyer = await market.buyer(10**9)
    sold = await market.api.request("POST", "/v1/orders", market.vendor, json={
        "listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "side": "sell", "type": "limit", "price": 10_000,
        "quantity": 5, "time_in_force": "gtc"})
    assert sold.status_code == 201, sold.text
    bought = await api.request("POST", "/v1/orders", buyer, headers={"Idempotency-Key": "together-1"}, json={
        "listing_id": listing["id"], "plan_id": listing["plans"][0]["id"], "side": "buy", "type": "limit", "price": 10_000,
        "quantity": 2, "time_in_force": "gtc"})
    assert bought.status_code == 201, bought.text

    db = Database(api.settings)
    try:
        async with db.read() as session:
            originals = {model: list((await session.execute(sa.select(model))).scalars()) for model in MODELS}
        # What the journey wrote: a contract with its JSON certificate still None and its content a
        # dict, an order's violations None, an idempotency record's bytes.
        assert all(originals[model] for model in MODELS), {model.__name__: len(rows) for model, rows in originals.items()}
        async with db.write() as session:
            for model in MODELS:
                table = model.__table__  # type: ignore[attr-defined]
                await session.execute(sa.insert(table), [{c.key: copy(row, "-a").__dict__[c.key] for c in table.columns} for row in originals[model]])
            await write_together(session, *(new_rows(model, [copy(row, "-b") for row in originals[model]]) for model in MODELS))
            await write_together(session, new_rows(Order, []), new_rows(Trade, []))  # nothing to insert: no statement
        async with db.read() as session:
            for model in MODELS:
                table = model.__table__  # type: ignore[attr-defined]
                key = table.c.key if model is IdempotencyRecord else table.c.id
                one_at_a_time = [stored(r, "-a") for r in (await session.execute(sa.select(table).where(key.like("%-a")).order_by(key))).all()]
                together = [stored(r, "-b") for r in (await session.execute(sa.select(table).where(key.like("%-b")).order_by(key))).all()]
                assert together == one_at_a_time and len(together) == len(originals[model]), model.__name__
                # JSON columns' None is stored alike (JSON null), not SQL NULL on one path only.
                for column in table.columns:
                    if isinstance(column.type, sa.JSON):
                        nulls = sa.select(sa.func.count()).where(column.is_(None))
                        assert (await session.execute(nulls.where(key.like("%-a")))).scalar() == (await session.execute(nulls.where(key.like("%-b")))).scalar()
    finally:
        await db.dispose()
