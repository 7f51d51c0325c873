"""Engines and transactions. Routes open one transaction per request: it commits when the
block succeeds and rolls back on any error, so bad input never leaves a partial record."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.util.concurrency import await_, greenlet_spawn

from exchange.core import retry
from exchange.log import log
from exchange.settings import Settings

T = TypeVar("T")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_file(url: str) -> Path | None:
    database = sa.engine.make_url(url).database
    return None if database in (None, "", ":memory:") else Path(database)


def make_engine(url: str, *, timeout_s: float = 10.0, immediate: bool = False, pool_size: int = 30) -> AsyncEngine:
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
    engine = create_async_engine(
        url,
        # A fixed pool, the most recently returned connection lent first. Connections past a
        # pool's size are closed as they come back: with 10 kept and 20 more allowed, a reader
        # process under a burst of reads opened and closed PostgreSQL connections (a backend
        # forked, authenticated and its caches warmed, each time) 73 times a second, and that
        # cost pushed the machine past saturation. Kept, they cost only their backends' memory.
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=timeout_s,
        pool_use_lifo=True,
        # JSONB columns (listing content, stored responses) read and written by msgspec: the
        # standard library's json was a visible share of the order desk's time.
        json_serializer=_json_text,
        json_deserializer=msgspec.json.decode,
        connect_args={
            # The server cancels a slow statement itself (a clear 57014 error); the client's
            # timeout is only the backstop for a stalled connection, so it must come later or
            # the two race and the caller sees a bare TimeoutError.
            "command_timeout": timeout_s * 2,
            "server_settings": {"statement_timeout": str(timeout_ms), "timezone": "UTC"},
        },
    )
    event.listen(engine.sync_engine, "connect", _mark_idle)
    event.listen(engine.sync_engine, "checkin", _mark_idle)
    event.listen(engine.sync_engine, "checkout", _check_alive)
    return engine


PING_AFTER_IDLE_S = 0.5
"""A pooled connection idle longer than this is pinged before it is lent (HikariCP's bypass
window, with its default). One used more recently is not: under load that ping was a round trip
before every transaction, a sixth of a short read's."""


def _mark_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Before the pool lends a connection: one that PostgreSQL ended (a restart, an operator's
    pg_terminate_backend) is replaced. asyncpg notices a closed socket by itself, so that check
    costs nothing; a connection idle for a while also answers a one-round-trip ping (a peer
    gone without closing the socket shows only then)."""
    connection = getattr(dbapi_connection, "_connection", None)
    if connection is None or not hasattr(dbapi_connection, "_handle_exception"):
        dbapi_connection.ping()  # an adapter we do not know: its own way, every time
        return
    if connection.is_closed():
        raise sa.exc.DisconnectionError("the database closed this connection")
    if time.monotonic() - record.info.get("idle_since", -math.inf) <= PING_AFTER_IDLE_S:
        return
    try:
        await_(connection.fetchrow(";"))
    except Exception as error:
        raise sa.exc.DisconnectionError(f"the connection failed its ping: {error!r}") from error


def in_list(values: Iterable[Any]) -> list[Any]:
    """`values` for an `IN` list: sorted, without repeats, padded to a power of two by repeating
    the last. An IN list's length is part of its statement's text, and each text is prepared
    (and planned) once per connection into a cache of 100: one text per length filled it under
    load, so the busiest statements were prepared again and again. Padded, a query has a handful
    of texts."""
    distinct = sorted(set(values))
    if len(distinct) > 1:
        distinct += distinct[-1:] * ((1 << (len(distinct) - 1).bit_length()) - len(distinct))
    return distinct


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


Processor = Callable[[Any], Any] | None


class Compiled(NamedTuple):
    """A read statement as the driver takes it: its text, its parameters in order (each with its
    default, for those the statement binds itself, and its type's conversion for the driver) and
    each result column's conversion back."""

    text: str
    names: tuple[str, ...]
    defaults: tuple[Any, ...]
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]


_REQUIRED = object()


def compile_for_driver(statement: sa.Select[Any], dialect: sa.Dialect) -> Compiled:
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    binds = [compiled.binds[name] for name in names]
    return Compiled(
        text=compiled.string,
        names=names,
        defaults=tuple(_REQUIRED if bind.required else bind.value for bind in binds),
        binds=tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds),
        results=tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in statement.selected_columns),
    )


class Database:
    """The app's handle on its database: `async with db.write() as session: ...`."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.dialect = "sqlite" if is_sqlite(self.url) else "postgresql"
        self.reader = make_engine(self.url, timeout_s=settings.db_timeout_s, pool_size=settings.db_pool_size)
        self.writer = (
            make_engine(self.url, timeout_s=settings.db_timeout_s, immediate=True)
            if self.dialect == "sqlite"
            else self.reader
        )
        # Lookups (a request that only reads) run without BEGIN and COMMIT on PostgreSQL: at READ
        # COMMITTED each statement sees its own snapshot inside a transaction too, so the two round
        # trips bought nothing. SQLite keeps its read transaction (one snapshot, and no round trips).
        self.lookups = (
            self.reader if self.dialect == "sqlite" else self.reader.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.writers = asyncio.Semaphore(settings.write_concurrency)
        self._compiled: dict[int, tuple[sa.Select[Any], Compiled]] = {}

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self.writers, AsyncSession(self.writer, expire_on_commit=False) as session:
            async with session.begin():
                yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.reader, expire_on_commit=False) as session:
            async with session.begin():
                yield session

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[AsyncSession]:
        """A session for a request that only reads: statements that would write are refused."""
        async with self.lookup_session() as session:
            async with session.begin():
                yield session

    def lookup_session(self) -> AsyncSession:
        """A lookup's session, not yet begun (it begins at its first statement; close it)."""
        return AsyncSession(self.lookups, expire_on_commit=False, sync_session_class=ReadOnlySession)

    async def rows(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> Sequence[Sequence[Any]] | None:
        """The rows of a read-only `statement` (a module-level constant: it is compiled once),
        on PostgreSQL straight from the driver, on a connection of the pool and outside any
        transaction, as a lookup's are; None elsewhere (read it in a session there). A statement
        run this way costs a third of what it does in a session (0.10 ms of CPU against 0.34 in
        a loop of `SELECT 1`): no session, no execution context, no ORM."""
        if self.dialect != "postgresql":
            return None
        kept = self._compiled.get(id(statement))
        if kept is None or kept[0] is not statement:
            kept = self._compiled[id(statement)] = (statement, compile_for_driver(statement, self.reader.dialect))
        compiled = kept[1]
        arguments = []
        for name, default, convert in zip(compiled.names, compiled.defaults, compiled.binds, strict=True):
            value = params[name] if default is _REQUIRED else params.get(name, default)
            arguments.append(value if convert is None else convert(value))
        # The pool's own checkout and return (its liveness check and reset), without a Connection.
        pooled = await greenlet_spawn(self.reader.sync_engine.pool.connect)
        try:
            records = await pooled.driver_connection.fetch(compiled.text, *arguments)  # type: ignore[union-attr]
        finally:
            await greenlet_spawn(pooled.close)
        if not any(compiled.results):
            return records  # type: ignore[no-any-return]
        return [tuple(value if convert is None else convert(value) for value, convert in zip(record, compiled.results, strict=True)) for record in records]

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()


class ReadOnlySession(Session):
    """A lookup's session: on PostgreSQL each statement commits by itself, so a write here
    would not roll back with the request. Refuse it instead (a programming error, never input)."""


@event.listens_for(ReadOnlySession, "before_flush")
def _no_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a lookup may not write: open the unit with write=True")


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _no_writes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise RuntimeError("a lookup may not write: open the unit with write=True")


async def retrying(
    once: Callable[[], Awaitable[T]],
    *,
    attempts: int = retry.ATTEMPTS,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Run `once` (one whole transaction) and, while PostgreSQL aborts it as a deadlock victim or
    a serialisation failure, run it again from the start after a short backoff, at most
    `attempts` times in all; any other error, or the last attempt's, goes to the caller."""
    for attempt in range(1, attempts + 1):
        try:
            return await once()
        except sa.exc.DBAPIError as error:
            code = retry.retryable(error)
            if code is None or attempt >= attempts:
                raise
            delay = retry.delay_s(attempt, jitter())
            log.warning("db.transaction_retried", attempt=attempt, sqlstate=code, reason=retry.RETRYABLE[code], delay_ms=round(delay * 1000, 1))
            if on_retry is not None:
                on_retry(code)
            await sleep(delay)
    raise AssertionError("attempts must be at least 1")
