"""What one short statement costs the app process in CPU, by the way it is sent: through
SQLAlchemy's ORM session (built per call, as most code does, or built once), through a Core
connection, and through asyncpg directly; and a whole read transaction around it. The statement
is the one every request runs: the rule set in force.

    .venv/bin/python benchmarks/statement.py              # 3,000 statements each way
    .venv/bin/python benchmarks/statement.py --count 300

CPU time of this process (`time.process_time`), PostgreSQL on loopback; the database is
exchange_bench_statement, emptied first."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import fresh_postgres, header, result  # noqa: E402

from exchange.db import Database  # noqa: E402
from exchange.migrate import upgrade  # noqa: E402
from exchange.settings import Settings  # noqa: E402
from exchange.tables import RuleSet  # noqa: E402

RAW = "SELECT version FROM rule_sets WHERE effective_at <= $1 ORDER BY version DESC LIMIT 1"
BUILT_ONCE = sa.select(RuleSet.version).where(RuleSet.effective_at <= sa.bindparam("now")).order_by(RuleSet.version.desc()).limit(1)  # type: ignore[arg-type, attr-defined]


def built_per_call(now: datetime) -> Any:
    return sa.select(RuleSet.version).where(RuleSet.effective_at <= now).order_by(RuleSet.version.desc()).limit(1)  # type: ignore[arg-type, attr-defined]


async def cpu_per_call(count: int, call: Callable[[], Awaitable[Any]]) -> float:
    await call()  # prepared and cached before the clock starts
    started = time.process_time()
    for _ in range(count):
        await call()
    return (time.process_time() - started) / count * 1e6


async def main(count: int) -> None:
    url = await fresh_postgres("exchange_bench_statement")
    await asyncio.to_thread(upgrade, url)
    db = Database(Settings(database_url=url))
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    now = datetime.now(UTC)
    size = f"{count:,} statements each way"
    try:
        await raw.execute("INSERT INTO rule_sets (version, hash, files, reason, created_by, created_at, effective_at) "
                          "VALUES (1, 'h', '{}', 'bench', 'bench', $1, $1)", now)
        async with db.read() as session:
            ways: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("ORM session, statement built per call", lambda: session.execute(built_per_call(now))),
                ("ORM session, statement built once", lambda: session.execute(BUILT_ONCE, {"now": now})),
            ]
            connection = await session.connection()
            ways.append(("Core connection, statement built once", lambda: connection.execute(BUILT_ONCE, {"now": now})))
            ways.append(("asyncpg, prepared", lambda: raw.fetchval(RAW, now)))
            for label, call in ways:
                micros = await cpu_per_call(count, call)
                print(f"  {label:42s} {micros:7.0f} µs of CPU")
                result(f"one statement: {label}", round(micros), "µs CPU", database="postgresql", size=size)

        async def read_transaction() -> None:
            async with db.read() as session:
                await session.execute(BUILT_ONCE, {"now": now})

        async def raw_transaction() -> None:
            async with raw.transaction():
                await raw.fetchval(RAW, now)

        for label, call in (("read transaction, SQLAlchemy", read_transaction), ("read transaction, asyncpg", raw_transaction)):
            micros = await cpu_per_call(count // 3, call)
            print(f"  {label:42s} {micros:7.0f} µs of CPU")
            result(f"{label} (one statement)", round(micros), "µs CPU", database="postgresql", size=f"{count // 3:,} transactions")
    finally:
        await raw.close()
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    header()
    asyncio.run(main(args.count))
