"""Ledger throughput: entries appended per second (PostgreSQL, and SQLite on request) and entries
verified per second offline, from the export of what was appended. Prints its figures; asserts
nothing about time.

    .venv/bin/python benchmarks/ledger.py [--entries 1000000] [--batch 1000] [--sqlite] [--no-postgres]

Appends go through the real posting path (`settlement.service.post_journals`): each journal is
one transfer between participants' accounts, checked against balances, hashed into the log in
batches of `--batch` journals, one transaction each; a head is signed with every batch (and at
least every 1,000 entries, the server's default), so batches of 1,000 sign a head every 1,000
entries. Then `exchange ledger export`'s code writes the whole log to a file and `exchange
ledger verify FILE`'s code checks it with nothing but the file (leaf hashes, head roots and
signatures, journals, replayed balances). PostgreSQL runs on a database of its own
(exchange_bench_ledger), created and emptied by this script."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_postgres, header, result  # noqa: E402

from exchange.db import Database
from exchange.migrate import upgrade
from exchange.participants import service as participants
from exchange.participants.schemas import ParticipantIn
from exchange.settings import Settings
from exchange.settlement import audit
from exchange.settlement.ledger import Ledger
from exchange.settlement.posting import Transfer, TransferKind
from exchange.settlement.service import JournalIn, post_journals

PARTICIPANTS = 200
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
        size = f"{entries:,} entries, batches of {batch:,}"
        result("ledger append", round(entries / elapsed), "entries/s", aim=("≥", 20_000), database=label, size=size,
               note="one-transfer journals through post_journals; a signed head per batch")

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
        result("ledger verify, offline", round(report.entries / verify_s), "entries/s", aim=("≥", 200_000), database=label,
               size=f"export of {report.entries:,} entries", note=f"{report.heads:,} signed heads checked; export written at {exported / export_s:,.0f} entries/s")
        started = time.perf_counter()
        live = await audit.verify_database(db)
        live_s = time.perf_counter() - started
        print(f"{label:<10} verify   {live.entries:>9,} entries in the database: {live_s:6.2f} s  {live.entries / live_s:>10,.0f} entries/s  ok={live.ok}")
        if not live.ok:
            raise SystemExit(f"verification in the database failed: {live.problems[:3]}")
        result("ledger verify, in the database", round(live.entries / live_s), "entries/s", database=label, size=f"{live.entries:,} entries")
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--sqlite", action="store_true", help="also on SQLite")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    header()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        if args.sqlite:
            await run("sqlite", f"sqlite+aiosqlite:///{workdir / 'bench.db'}", args.entries, args.batch, workdir)
        if not args.no_postgres:
            await run("postgresql", await fresh_postgres("exchange_bench_ledger"), args.entries, args.batch, workdir)


if __name__ == "__main__":
    asyncio.run(main())
