"""Engines and transactions. Routes open one transaction per request: it commits when the
block succeeds and rolls back on any error, so bad input never leaves a partial record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from exchange.settings import Settings


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_file(url: str) -> Path | None:
    database = sa.engine.make_url(url).database
    return None if database in (None, "", ":memory:") else Path(database)


def make_engine(url: str, *, timeout_s: float = 10.0, immediate: bool = False) -> AsyncEngine:
    """An engine for `url`. On SQLite, `immediate` takes the write lock at BEGIN, so two writers
    queue on busy_timeout instead of failing when a read lock cannot be upgraded."""
    if is_sqlite(url):
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": timeout_s})

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    timeout_ms = int(timeout_s * 1000)
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={
            "command_timeout": timeout_s,
            "server_settings": {"statement_timeout": str(timeout_ms), "timezone": "UTC"},
        },
    )


class Database:
    """The app's handle on its database: `async with db.write() as session: ...`."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.dialect = "sqlite" if is_sqlite(self.url) else "postgresql"
        self.reader = make_engine(self.url, timeout_s=settings.db_timeout_s)
        self.writer = (
            make_engine(self.url, timeout_s=settings.db_timeout_s, immediate=True)
            if self.dialect == "sqlite"
            else self.reader
        )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.writer, expire_on_commit=False) as session:
            async with session.begin():
                yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.reader, expire_on_commit=False) as session:
            async with session.begin():
                yield session

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()
