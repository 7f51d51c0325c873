"""Reads straight from the driver (`Database.rows`): what a lookup on PostgreSQL runs without a session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from exchange.db import Database
from exchange.settings import Settings
from exchange.tables import LedgerEntry, Participant

PARTICIPANTS: sa.Table = Participant.__table__  # type: ignore[attr-defined]
ENTRIES: sa.Table = LedgerEntry.__table__  # type: ignore[attr-defined]
# Every kind of column a read meets: text, JSON, an aware time, a nullable one; a parameter
# the statement binds itself (the LIMIT) beside the caller's.
_SINCE = (
    sa.select(*PARTICIPANTS.columns)
    .where(PARTICIPANTS.c.created_at >= sa.bindparam("since", type_=PARTICIPANTS.c.created_at.type))
    .order_by(PARTICIPANTS.c.id)
    .limit(5)
)
_ENTRIES = sa.select(ENTRIES.c.index, ENTRIES.c.leaf_hash, ENTRIES.c.amount).order_by(ENTRIES.c.index)
_BACKEND = sa.select(sa.func.pg_backend_pid())


async def _add_participants(db: Database, created: datetime) -> None:
    async with db.write() as session:
        session.add_all([
            Participant(id="par_a", name="甲 data", roles=["buyer"], qualifications=[], created_at=created),
            Participant(id="par_b", name="B", roles=["vendor", "buyer"], qualifications=["data-merchant"], sponsor_id="par_a",
                        status="suspended", created_at=created + timedelta(seconds=1)),
        ])


async def test_a_read_from_the_driver_gives_what_the_session_gives(clean_database_url: str) -> None:
    db = Database(Settings(database_url=clean_database_url))
    created = datetime(2026, 11, 24, 2, 0, 0, 123000, tzinfo=UTC)
    try:
        await _add_participants(db, created)
        async with db.read() as session:
            expected = [tuple(row) for row in (await session.execute(_SINCE, {"since": created})).all()]
        rows = await db.rows(_SINCE, {"since": created})
        if db.dialect != "postgresql":
            assert rows is None  # SQLite reads in its session: nothing to save there
            return
        assert rows is not None
        assert [tuple(row) for row in rows] == expected
        assert len(expected) == 2 and expected[1][2] == ["vendor", "buyer"]  # JSON decoded
        assert all(row[-1].tzinfo is not None and row[-1].utcoffset() == timedelta(0) for row in rows)  # aware UTC times
        assert [tuple(row) for row in await db.rows(_SINCE, {"since": created + timedelta(seconds=1)})] == expected[1:]
        assert await db.rows(_ENTRIES, {}) == []
    finally:
        await db.dispose()


@pytest.mark.postgres_only
async def test_a_read_from_the_driver_gets_a_new_connection_after_the_database_dropped_its_own(clean_database_url: str) -> None:
    """It borrows from the session's pool, with the pool's check before lending: a connection
    PostgreSQL ended is replaced, not handed out to fail."""
    db = Database(Settings(database_url=clean_database_url))
    other = Database(Settings(database_url=clean_database_url))
    try:
        rows = await db.rows(_BACKEND, {})
        assert rows is not None
        first = rows[0][0]
        async with other.write() as session:
            assert (await session.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})).scalar_one() is True
        for _ in range(100):
            async with other.read() as session:
                if (await session.execute(sa.text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"), {"pid": first})).scalar_one():
                    break
            await asyncio.sleep(0.01)
        rows = await db.rows(_BACKEND, {})
        assert rows is not None and rows[0][0] != first
    finally:
        await other.dispose()
        await db.dispose()


@pytest.mark.postgres_only
async def test_a_burst_of_reads_keeps_the_connections_it_opened(clean_database_url: str) -> None:
    """Connections are opened as reads need them and then kept: a second burst as wide as the
    first borrows the same ones, and one wider than the pool waits for one of them. A pool that
    closed what came back past its size opened new PostgreSQL backends under every burst."""
    db = Database(Settings(database_url=clean_database_url, db_pool_size=12))
    sleeping = sa.select(sa.func.pg_backend_pid(), sa.func.pg_sleep(0.05))

    async def burst(width: int) -> set[int]:
        answers = await asyncio.gather(*(db.rows(sleeping, {}) for _ in range(width)))
        return {rows[0][0] for rows in answers if rows is not None}

    try:
        first = await burst(12)
        assert len(first) == 12  # all at once: one connection each
        assert await burst(12) == first
        assert await burst(20) <= first
    finally:
        await db.dispose()
