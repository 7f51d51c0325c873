"""Limits: requests per participant per minute from the rules (429 with Retry-After), body
size, page size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exchange.settings import shipped_rules_dir
from tests.conftest import MovableClock
from tests.harness import Api


async def test_a_participant_over_its_request_rate_gets_429_with_retry_after(api: Api, clock: MovableClock) -> None:
    trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8").replace("requests_per_minute = 1200", "requests_per_minute = 5")
    assert (await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"trading.toml": trading}, "reason": "tight"})).status_code == 200
    _, buyer = await api.participant("buyer")
    _, other = await api.participant("buyer")
    statuses = [(await api.request("GET", "/v1/participants/me", buyer)).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    limited = await api.request("GET", "/v1/accounts/me", buyer)
    assert limited.status_code == 429 and limited.headers["content-type"].startswith("application/problem+json")
    assert int(limited.headers["Retry-After"]) >= 1 and "api.requests_per_minute" in limited.json()["detail"]
    assert (await api.request("GET", "/v1/participants/me", other)).status_code == 200  # per participant
    assert (await api.request("GET", "/v1/listings")).status_code == 200  # anonymous catalogue reads are not keyed
    clock.advance(seconds=int(limited.headers["Retry-After"]))
    assert (await api.request("GET", "/v1/participants/me", buyer)).status_code == 200


async def test_bodies_and_pages_are_bounded(api: Api) -> None:
    huge = {"name": "x" * (api.settings.body_bytes_max + 10), "roles": ["buyer"]}
    too_big = await api.request("POST", "/v1/participants", api.operator_key, json=huge)
    assert too_big.status_code == 413 and too_big.json()["code"] == "request_too_large"
    for params in ({"limit": 0}, {"limit": 10_000}):
        page = await api.request("GET", "/v1/listings", params=params)
        assert page.status_code == 400 and page.json()["errors"][0]["field"] == "limit"


async def test_every_database_call_has_a_timeout(clean_database_url: str) -> None:
    import sqlalchemy as sa

    from exchange.db import Database
    from exchange.settings import Settings

    db = Database(Settings(database_url=clean_database_url, db_timeout_s=0.25))
    try:
        async with db.read() as session:
            if clean_database_url.startswith("postgresql"):
                assert (await session.execute(sa.text("SHOW statement_timeout"))).scalar_one() == "250ms"
                failed = False
                try:
                    await session.execute(sa.text("SELECT pg_sleep(2)"))
                except sa.exc.DBAPIError as error:
                    failed = "statement timeout" in str(error)
                assert failed  # a statement running longer than the timeout is cancelled
            else:
                assert (await session.execute(sa.text("PRAGMA busy_timeout"))).scalar_one() == 250
    finally:
        await db.dispose()


@pytest.mark.postgres_only
async def test_a_connection_the_database_dropped_is_replaced_before_it_is_lent(clean_database_url: str) -> None:
    """After PostgreSQL ends a pooled connection (a restart, an operator's pg_terminate_backend),
    the next transaction gets a new one instead of failing, even when the old one was in use a
    moment ago (inside the window where the pool skips its ping: asyncpg saw the socket close)."""
    import asyncio

    import sqlalchemy as sa

    from exchange.db import Database
    from exchange.settings import Settings

    db = Database(Settings(database_url=clean_database_url))
    try:
        async with db.read() as session:
            first = (await session.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        async with db.lookup() as session:
            assert (await session.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one() == first  # pooled
        other = Database(Settings(database_url=clean_database_url))
        try:
            async with other.write() as session:
                assert (await session.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})).scalar_one() is True
            for _ in range(100):  # until the backend has gone, so its socket has closed
                async with other.read() as session:
                    gone = (await session.execute(sa.text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"), {"pid": first})).scalar_one()
                if gone:
                    break
                await asyncio.sleep(0.01)
        finally:
            await other.dispose()
        async with db.read() as session:
            assert (await session.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one() != first
    finally:
        await db.dispose()


@pytest.mark.postgres_only
async def test_a_connection_idle_past_the_window_is_pinged_before_it_is_lent(clean_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load a connection goes straight back out, unpinged (the ping was a round trip before
    every transaction); one idle longer than `PING_AFTER_IDLE_S` answers a ping first, which is
    how a peer that vanished without closing the socket shows."""
    import sqlalchemy as sa

    from exchange import db as db_module
    from exchange.db import Database
    from exchange.settings import Settings

    db = Database(Settings(database_url=clean_database_url))
    sent: list[str] = []
    try:
        async with db.read() as session:
            raw = await (await session.connection()).get_raw_connection()
            raw.driver_connection.add_query_logger(lambda record: sent.append(record.query))
        async with db.lookup() as session:
            await session.execute(sa.text("SELECT 1"))
        assert ";" not in sent  # used a moment ago: lent without a ping
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
        sent.clear()
        async with db.lookup() as session:
            await session.execute(sa.text("SELECT 1"))
        assert sent[0] == ";" and sent.count(";") == 1  # idle past the window: one ping, then the statement
        assert not any(query.upper().startswith(("BEGIN", "COMMIT")) for query in sent)  # a lookup has no transaction to open
    finally:
        await db.dispose()


async def test_a_lookup_refuses_to_write_and_leaves_nothing_behind(clean_database_url: str) -> None:
    """A request that only reads runs in a lookup (on PostgreSQL without a transaction, so each
    statement would commit by itself): a write there is a programming error, refused before it
    reaches the database, whether flushed from the session or issued as a statement."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from exchange.db import Database
    from exchange.settings import Settings
    from exchange.tables import Participant

    db = Database(Settings(database_url=clean_database_url))
    row = {"id": "par_lookup_write", "name": "written in a lookup", "roles": ["buyer"], "qualifications": [], "status": "active",
           "created_at": datetime(2026, 12, 4, tzinfo=UTC)}
    try:
        with pytest.raises(RuntimeError, match="may not write"):
            async with db.lookup() as session:
                session.add(Participant(**row))
                await session.flush()
        with pytest.raises(RuntimeError, match="may not write"):
            async with db.lookup() as session:
                await session.execute(sa.insert(Participant).values(**row))
        async with db.lookup() as session:
            assert (await session.get(Participant, "par_lookup_write")) is None
    finally:
        await db.dispose()


async def test_a_database_too_busy_to_answer_in_time_is_a_503_to_retry(api: Api) -> None:
    """A deposit that waits too long for a lock another transaction holds (PostgreSQL: the
    ledger's row, past the statement timeout; SQLite: the write lock, past the busy timeout) is
    rolled back and answered 503 with Retry-After, not 500: nothing of it was kept, and the same
    request with its Idempotency-Key succeeds once the lock is free."""
    import msgspec
    import sqlalchemy as sa
    from litestar.testing import AsyncTestClient

    from exchange.app import create_app
    from exchange.db import Database

    buyer, key = await api.participant("buyer")

    async def available() -> int:
        balances = (await api.request("GET", "/v1/accounts/me", key)).json()["balances"]
        return int(balances[0]["available"]) if balances else 0

    body = {"participant_id": buyer, "amount": 700, "currency": "CNY", "rail": "bank", "reference": "busy-1"}
    headers = {**api.auth(api.operator_key), "Idempotency-Key": "busy-1"}
    impatient = create_app(msgspec.structs.replace(api.settings, db_timeout_s=0.3))
    holder = Database(api.settings)
    try:
        async with AsyncTestClient(app=impatient, raise_server_exceptions=False) as client:
            postgres = holder.dialect == "postgresql"
            async with holder.write() as session:  # on SQLite its first statement takes the write lock
                await session.execute(sa.text("SELECT size FROM ledger_state WHERE id = 1" + (" FOR UPDATE" if postgres else "")))
                busy = await client.post("/v1/accounts/deposits", json=body, headers=headers)
            assert busy.status_code == 503, busy.text
            assert busy.headers["content-type"].startswith("application/problem+json")
            assert busy.json()["code"] == "database_busy"
            assert ("statement_timeout" if postgres else "database_locked") in busy.json()["detail"]
            assert busy.headers["Retry-After"] == "1"
            assert await available() == 0  # nothing kept
            again = await client.post("/v1/accounts/deposits", json=body, headers=headers)
            assert again.status_code == 201, again.text
    finally:
        await holder.dispose()
    assert await available() == 700


@pytest.mark.postgres_only
async def test_the_request_rate_holds_across_processes_that_share_their_spending(clean_database_url: str, clock: MovableClock, tmp_path: Path) -> None:
    """Two app processes on one database (as behind the deploy recipe's nginx) share what a
    participant spent: together they serve the rule's limit, not twice it."""
    from litestar.testing import AsyncTestClient

    from exchange.app import create_app
    from exchange.context import Exchange
    from exchange.settings import Settings

    settings = Settings(
        database_url=clean_database_url, operator_key_file=str(tmp_path / "operator.key"), signing_key_file=str(tmp_path / "signing.key"),
        sweep_interval_ms=0, rate_share_interval_ms=0,  # shared by hand below, at the moments the test chooses
    )
    first, second = create_app(settings, clock=clock), create_app(settings, clock=clock)
    exchange_of = {app: app.dependencies["exchange"].dependency(app.state) for app in (first, second)}
    async with AsyncTestClient(app=first) as one, AsyncTestClient(app=second) as two:
        api = Api(one, settings)
        await api.start()
        trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8").replace("requests_per_minute = 1200", "requests_per_minute = 10")
        assert (await api.request("PUT", "/v1/rules", api.operator_key, json={"files": {"trading.toml": trading}, "reason": "tight"})).status_code == 200
        _, buyer = await api.participant("buyer")

        async def statuses(client: AsyncTestClient[Any], count: int) -> list[int]:
            return [(await client.get("/v1/participants/me", headers=Api.auth(buyer))).status_code for _ in range(count)]

        async def share(app: Any) -> None:
            exchange: Exchange = exchange_of[app]
            client = one if app is first else two
            client.blocking_portal.call(exchange.share_rate_limits)  # on the app's own event loop, as its timer would

        assert await statuses(one, 6) == [200] * 6
        await share(first)
        assert await statuses(two, 1) == [200]  # the first this process sees of the buyer: its own bucket is full
        await share(second)  # ... until it learns what the other spent
        assert await statuses(two, 4) == [200] * 3 + [429]
        await share(second)
        await share(first)
        assert await statuses(one, 1) == [429]  # 10 served in all, the rule's limit
        clock.advance(seconds=6)  # a tenth of a minute: one request's worth
        assert await statuses(two, 2) == [200, 429]
        await share(second)
        await share(first)
        assert await statuses(one, 1) == [429]
