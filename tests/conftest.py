"""Database fixtures: every database test runs on SQLite, and again on PostgreSQL when one
answers at EXCHANGE_TEST_POSTGRES_URL. Under CI (CI=true) PostgreSQL is required: the run
stops at once, loudly, when it does not answer."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from exchange.db import make_engine
from exchange.migrate import upgrade
from exchange.settings import normalise_database_url

POSTGRES_URL = normalise_database_url(
    os.environ.get("EXCHANGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
)
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
ROOT = Path(__file__).resolve().parent.parent


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""

    async def probe() -> None:
        engine = make_engine(POSTGRES_URL, timeout_s=5)
        try:
            async with engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), 10))
    except Exception as error:  # any failure to connect means: not reachable
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked postgres_only keep only their PostgreSQL variant; slow ones run under CI
    (or with EXCHANGE_TEST_SLOW=1)."""
    if not (os.environ.get("CI") or os.environ.get("EXCHANGE_TEST_SLOW")):
        for item in items:
            if item.get_closest_marker("slow"):
                item.add_marker(pytest.mark.skip(reason="a long fault or load run: set EXCHANGE_TEST_SLOW=1 (CI runs it)"))
    dropped = [item for item in items if item.get_closest_marker("postgres_only") and "[sqlite" in item.name]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI:
        problem = postgres_problem()
        if problem is not None:
            pytest.exit(
                f"CI requires PostgreSQL at EXCHANGE_TEST_POSTGRES_URL={POSTGRES_URL!r} "
                f"and it does not answer ({problem}). Start it: "
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
                returncode=3,
            )


def on_postgres_server(*statements: str) -> None:
    """Run `statements` one by one, outside a transaction (CREATE and DROP DATABASE need that), on
    the maintenance database of the test server: for tests that need a database of their own."""

    async def run() -> None:
        engine = create_async_engine(POSTGRES_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(sa.text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


def _reset_postgres() -> None:
    async def reset() -> None:
        engine = make_engine(POSTGRES_URL)
        async with engine.begin() as connection:
            await connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            await connection.execute(sa.text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database, once per session and kind."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'exchange.db'}"
    else:
        problem = postgres_problem()
        if problem is not None:
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} ({problem}); set CI=true to require it")
        _reset_postgres()
        url = POSTGRES_URL
    upgrade(url)
    yield url


TABLES = (
    "rate_buckets",
    "web_sessions",
    "amendments",
    "shadow_divergences",
    "rule_shadows",
    "monthly_volumes",
    "usage_cycles",
    "bills",
    "usage_records",
    "usage_batches",
    "negotiation_steps",
    "negotiations",
    "notices",
    "contracts",
    "auctions",
    "trades",
    "orders",
    "books",
    "withdrawals",
    "certificates",
    "signing_keys",
    "ledger_heads",
    "ledger_nodes",
    "pending_transfers",
    "ledger_entries",
    "accounts",
    "listing_search",
    "idempotency_keys",
    "listing_events",
    "listing_plans",
    "listing_revisions",
    "listings",
    "rule_sets",
    "api_keys",
    "participants",
)


async def empty_database(url: str) -> None:
    from exchange.tables import metadata

    # One-row states: the log's goes back to the empty tree below; the catalogue version only
    # ever moves on (emptying the catalogue moves it).
    forgotten = set(metadata.tables) - set(TABLES) - {"ledger_state", "catalogue_state"}
    assert not forgotten, f"tests/conftest.py TABLES misses {sorted(forgotten)}: tests would see earlier tests' rows"
    engine = make_engine(url)
    async with engine.begin() as connection:
        if url.startswith("sqlite"):
            for table in TABLES:
                await connection.execute(sa.text(f"DELETE FROM {table}"))
        else:
            await connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
        # The log's one state row goes back to the empty tree rather than away.
        await connection.execute(sa.text("UPDATE ledger_state SET size = 0, frontier = :empty, head_size = NULL, head_timestamp_ms = NULL"), {"empty": b""})
    await engine.dispose()


@pytest.fixture
async def clean_database_url(database_url: str) -> AsyncIterator[str]:
    """The session's database, emptied before the test."""
    await empty_database(database_url)
    yield database_url


class MovableClock:
    """The injected clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def api(clean_database_url: str, clock: MovableClock, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The app on a clean database, an HTTP client, and an operator to act with."""
    from litestar.testing import AsyncTestClient

    from exchange.app import create_app
    from exchange.settings import Settings
    from tests.harness import Api

    settings = Settings(
        database_url=clean_database_url,
        operator_key_file=str(tmp_path / "operator.key"),
        signing_key_file=str(tmp_path / "signing.key"),
        sweep_interval_ms=0,  # tests sweep themselves, after moving the clock: a background sweep would race them
        # Nor does the rate limit's sharing run on a timer: spending shared after a test moved the
        # clock a minute on is charged to the new minute (tests/test_limits.py shares by hand).
        rate_share_interval_ms=0,
    )
    app = create_app(settings, clock=clock)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        harness = Api(client, settings)
        await harness.start()
        yield harness


@pytest.fixture
def lookup_sessions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Grows by one each time a request that only reads opens a session (`Database.lookup_session`)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from exchange.db import Database

    opened: list[str] = []
    real = Database.lookup_session

    def counted(self: Database) -> AsyncSession:
        opened.append("lookup")
        return real(self)

    monkeypatch.setattr(Database, "lookup_session", counted)
    return opened
