"""Ledger throughput: entries appended per second (SQLite and PostgreSQL) and entries verified
per second offline. Prints its figures; asserts nothing about time.

    .venv/bin/python benchmarks/ledger.py [--entries 200000] [--batch 2000] [--no-postgres]

Appends go through the real posting path (`settlement.service.post_journals`): each journal is
one transfer between participants' accounts, checked against balances, hashed into the log in
batches, with heads signed per batch. PostgreSQL runs on a database of its own
(EXCHANGE_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/exchange_bench),
created and emptied by this script."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from exchange.db import Database
from exchange.migrate import upgrade
from exchange.participants import service as participants
from exchange.participants.schemas import ParticipantIn
from exchange.settings import Settings, normalise_database_url
from exchange.settlement import audit
from exchange.settlement.ledger import Ledger
from exchange.settlement.posting import Transfer, TransferKind
from exchange.settlement.service import JournalIn, post_journals

PARTICIPANTS = 200
BENCH_POSTGRES = os.environ.get("EXCHANGE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/exchange_bench")


async def fresh_postgres(url: str) -> str:
    """Create the benchmark database if needed and empty it."""
    url = normalise_database_url(url)
    name = sa.engine.make_url(url).database
    admin = create_async_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        exists = (await connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})).first()
        if exists is None:
            await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        await connection.execute(sa.text("CREATE SCHEMA public"))
    await engine.dispose()
    return url


async def run(label: str, url: str, entries: int, batch: int, workdir: Path) -> None:
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    settings = Settings(database_url=url, signing_key_file=str(workdir / f"{label}.key"))
    db = Database(settings)
    ledger = Ledger(settings)
    now = datetime.now(UTC)
    try:
        async with db.write() as session:
            ids = [
                (await participants.register(session, ParticipantIn(name=f"bench {n}", roles=["buyer", "vendor"]), now)).id  # type: ignore[list-item]
                for n in range(PARTICIPANTS)
            ]
            funding = [
                JournalIn(transfers=[Transfer(id=f"fund-{pid}", kind=TransferKind.deposit, debit_account="exchange:bank:CNY",
                                              credit_account=f"{pid}:available:CNY", amount=10**12, currency="CNY")])
                for pid in ids
            ]
            await post_journals(session, ledger, funding, now)

        started = time.perf_counter()
        done = 0
        while done < entries:
            size = min(batch, entries - done)
            journals = [
                JournalIn(transfers=[Transfer(
                    id=f"t-{done + n}", kind=TransferKind.settle, debit_account=f"{ids[(done + n) % PARTICIPANTS]}:available:CNY",
                    credit_account=f"{ids[(done + n * 7 + 1) % PARTICIPANTS]}:available:CNY", amount=1 + (done + n) % 997, currency="CNY",
                )])
                for n in range(size)
            ]
            async with db.write() as session:
                results = await post_journals(session, ledger, journals, datetime.now(UTC))
            refused = [r for r in results if isinstance(r, Exception)]
            if refused:
                raise SystemExit(f"benchmark journal refused: {refused[0]}")
            done += size
        elapsed = time.perf_counter() - started
        print(f"{label:<10} append   {entries:>9,} entries in batches of {batch:,}: {elapsed:6.2f} s  {entries / elapsed:>10,.0f} entries/s")

        export = workdir / f"{label}.jsonl"
        started = time.perf_counter()
        exported = await audit.export(db, ledger, export, datetime.now(UTC))
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        report = audit.verify_file(export)
        verify_s = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"verification failed: {report.problems[:3]}")
        print(f"{label:<10} export   {exported:>9,} entries: {export_s:6.2f} s  {exported / export_s:>10,.0f} entries/s  ({export.stat().st_size / 1e6:,.0f} MB)")
        print(f"{label:<10} verify   {report.entries:>9,} entries offline: {verify_s:6.2f} s  {report.entries / verify_s:>10,.0f} entries/s  ({report.heads} heads)")
        started = time.perf_counter()
        live = await audit.verify_database(db)
        live_s = time.perf_counter() - started
        print(f"{label:<10} verify   {live.entries:>9,} entries in the database: {live_s:6.2f} s  {live.entries / live_s:>10,.0f} entries/s  ok={live.ok}")
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        await run("sqlite", f"sqlite+aiosqlite:///{workdir / 'bench.db'}", args.entries, args.batch, workdir)
        if not args.no_postgres:
            await run("postgresql", await fresh_postgres(BENCH_POSTGRES), args.entries, args.batch, workdir)


if __name__ == "__main__":
    asyncio.run(main())
