"""`tables.write_together` (the ledger's one statement for a posting's rows): inserts and updates
of several tables land exactly as written, and nothing else changes, on PostgreSQL (one
statement of CTEs over arrays) and on SQLite (one executemany a part) alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from exchange.db import Database
from exchange.tables import Account, MonthlyVolume, PendingTransfer, Rows, write_together
from tests.harness import Api

ACCOUNTS: sa.Table = Account.__table__  # type: ignore[assignment]
PENDING: sa.Table = PendingTransfer.__table__  # type: ignore[assignment]
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def account(name: str, balance: int) -> dict[str, object]:
    owner, kind, currency = name.split(":")
    return {"id": name, "owner_id": owner, "kind": kind, "currency": currency, "balance": balance, "created_at": NOW}


def pending(pending_id: str, amount: int) -> dict[str, object]:
    return {"id": pending_id, "debit_account": "a:available:CNY", "credit_account": "b:available:CNY", "escrow_account": "a:escrow:CNY",
            "currency": "CNY", "amount": amount, "remaining": amount, "status": "pending", "created_index": 1, "updated_index": 1}


async def test_inserts_and_updates_of_several_tables_land_as_written(api: Api) -> None:
    db = Database(api.settings)
    try:
        async with db.write() as session:
            await write_together(session, Rows(ACCOUNTS, [account("t1:available:CNY", 100), account("t2:available:CNY", 200),
                                                          account("t3:available:CNY", 300)]))
            await write_together(session, Rows(PENDING, [pending("hold-1", 40), pending("hold-2", 60)]))
        async with db.write() as session:
            await write_together(
                session,
                Rows(ACCOUNTS, [{"id": "t1:available:CNY", "balance": 60}, {"id": "t3:available:CNY", "balance": 0}], key="id"),
                Rows(ACCOUNTS, [account("t4:escrow:CNY", 40)]),
                Rows(PENDING, [{"id": "hold-2", "remaining": 0, "status": "posted", "updated_index": 9}], key="id"),
                Rows(PENDING, [pending("hold-3", 5)]),
                Rows(PENDING, [], key="id"),  # an empty part writes nothing
            )
            await write_together(session)  # nothing at all: no statement
        async with db.read() as session:
            balances = dict((await session.execute(sa.select(ACCOUNTS.c.id, ACCOUNTS.c.balance).where(ACCOUNTS.c.id.like("t%")))).all())
            assert balances == {"t1:available:CNY": 60, "t2:available:CNY": 200, "t3:available:CNY": 0, "t4:escrow:CNY": 40}
            t4 = (await session.execute(sa.select(ACCOUNTS).where(ACCOUNTS.c.id == "t4:escrow:CNY"))).one()
            assert (t4.owner_id, t4.kind, t4.currency, t4.created_at) == ("t4", "escrow", "CNY", NOW)
            rows = {r.id: (r.amount, r.remaining, r.status, r.updated_index) for r in (await session.execute(sa.select(PENDING).where(PENDING.c.id.like("hold-%")))).all()}
            assert rows == {"hold-1": (40, 40, "pending", 1), "hold-2": (60, 0, "posted", 9), "hold-3": (5, 5, "pending", 1)}
    finally:
        await db.dispose()


async def test_a_part_that_fails_leaves_nothing_written(api: Api) -> None:
    db = Database(api.settings)
    try:
        async with db.write() as session:
            await write_together(session, Rows(ACCOUNTS, [account("u1:available:CNY", 100)]))
        with pytest.raises(sa.exc.IntegrityError):
            async with db.write() as session:
                await write_together(
                    session,
                    Rows(ACCOUNTS, [{"id": "u1:available:CNY", "balance": 1}], key="id"),
                    Rows(PENDING, [pending("hold-9", 5)]),
                    Rows(ACCOUNTS, [account("u1:available:CNY", 5)]),  # the key is taken
                )
        async with db.read() as session:
            assert (await session.execute(sa.select(ACCOUNTS.c.balance).where(ACCOUNTS.c.id == "u1:available:CNY"))).scalar_one() == 100
            assert (await session.execute(sa.select(PENDING.c.id).where(PENDING.c.id == "hold-9"))).first() is None
    finally:
        await db.dispose()


async def test_adding_rows_insert_new_keys_and_add_to_taken_ones(api: Api) -> None:
    volumes: sa.Table = MonthlyVolume.__table__  # type: ignore[assignment]
    december, november = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    db = Database(api.settings)
    try:
        async with db.write() as session:
            await write_together(session, Rows(volumes, [{"participant_id": "v1", "month_start": december, "amount": 100}], adding="amount"))
        async with db.write() as session:
            await write_together(session, Rows(volumes, [
                {"participant_id": "v1", "month_start": december, "amount": 25},  # taken: added
                {"participant_id": "v1", "month_start": november, "amount": 7},  # another month: a row of its own
                {"participant_id": "v2", "month_start": december, "amount": 3},
            ], adding="amount"), Rows(ACCOUNTS, [account("v1:available:CNY", 9)]))
        async with db.read() as session:
            rows = {(r.participant_id, r.month_start): r.amount for r in (await session.execute(sa.select(volumes).where(volumes.c.participant_id.like("v%")))).all()}
            assert rows == {("v1", december): 125, ("v1", november): 7, ("v2", december): 3}
    finally:
        await db.dispose()
