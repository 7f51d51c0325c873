"""Start-up: seconds from spawning `exchange serve` to the first 200 from its readiness route, on a
PostgreSQL database holding 100,000 resting (open) quota orders. Prints the figure.

    .venv/bin/python benchmarks/startup.py [--orders 100000] [--listings 100] [--starts 3]

Set-up (untimed): rules, an operator, a vendor per listing and 50 funded buyers through the
services the API runs; `--listings` quota listings created, submitted and approved through
the listing service; then the orders written straight into the tables through the app's own
table definitions: half sells by each listing's vendor above the reference price, half buys
by the buyers below it (so no book is crossed), gtc limit orders with their lifetime, every
buy's worst case held by a pending ledger transfer posted through `post_journals`, each
book's sequence number set. The database is ANALYZEd, as autovacuum would after a load.

Timed: `exchange serve` spawned fresh `--starts` times; the readiness route is polled every
10 ms (/ready when the server has one, else /health, which reads the database and the rule
set in force). The figure is the median start. After each start one book is read and one
buy that crosses it is placed, timed apart (the first order on a freshly started server), and
the book's depth is checked against what was written. PostgreSQL runs on a database of its
own (exchange_bench_startup)."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import EXCHANGE_BIN, ROOT, exchange_env, free_port, fresh_postgres, header, result, stop  # noqa: E402
from httpload import Connection  # noqa: E402

from exchange.auth import Caller  # noqa: E402
from exchange.core.ids import new_id  # noqa: E402
from exchange.db import Database  # noqa: E402
from exchange.listings import service as listings  # noqa: E402
from exchange.listings.schemas import ApproveIn, ListingIn  # noqa: E402
from exchange.migrate import upgrade  # noqa: E402
from exchange.participants import service as participants  # noqa: E402
from exchange.participants.schemas import ParticipantIn  # noqa: E402
from exchange.rulebook import store  # noqa: E402
from exchange.rulebook.files import read_rule_dir  # noqa: E402
from exchange.settings import Settings, shipped_rules_dir  # noqa: E402
from exchange.settlement.ledger import Ledger  # noqa: E402
from exchange.settlement.posting import Phase, References, Transfer, TransferKind  # noqa: E402
from exchange.settlement.service import JournalIn, post_journals  # noqa: E402
from exchange.tables import Book, Order  # noqa: E402

AIM = ("≤", 5)
BUYERS = 50
REFERENCE = 10_000  # fen per unit
TICK = 10
BATCH = 5_000


def listing_body(n: int) -> dict[str, Any]:
    return {
        "title": f"启动测试接口额度 {n} Start-up test API quota {n}", "description": "启动基准用的接口调用额度。API call quota for the start-up benchmark.",
        "category": "transport", "grade": "L2", "delivery": "api", "update_frequency": "daily", "schema": "calls",
        "attestations": {"source": "start-up benchmark", "rights": ["holding", "use", "operation"]},
        "licence": {"purposes": ["research"], "duration_days": 365},
        "plans": [{"kind": "quota", "unit": "1,000 calls", "reference_price": {"amount": REFERENCE, "currency": "CNY"}}],
    }


def caller_of(created: Any) -> Caller:
    p = created.participant
    return Caller(id=p.id, name=p.name, roles=frozenset(p.roles), qualifications=frozenset(p.qualifications), sponsor_id=p.sponsor_id)


async def seed(url: str, workdir: Path, orders: int, listing_count: int) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    settings = Settings(database_url=url, signing_key_file=str(workdir / "signing.key"))
    db, ledger, now = Database(settings), Ledger(settings), datetime.now(UTC)
    rng = random.Random(1)
    try:
        async with db.write() as session:
            await store.ensure_initial(session, ledger, read_rule_dir(shipped_rules_dir()), now)
        async with db.write() as session:
            rules = await store.active(session, store.RulebookCache(), now)
            operator = caller_of(await participants.register(session, ParticipantIn(name="start-up operator", roles=["operator"]), now))  # type: ignore[list-item]
            buyers = [await participants.register(session, ParticipantIn(name=f"start-up buyer {n}", roles=["buyer"]), now)  # type: ignore[list-item]
                      for n in range(BUYERS)]
            books: list[tuple[str, str, Caller]] = []
            for n in range(listing_count):
                vendor = caller_of(await participants.register(session, ParticipantIn(name=f"start-up vendor {n}", roles=["vendor"]), now))  # type: ignore[list-item]
                made = await listings.create(session, rules, vendor, msgspec.convert(listing_body(n), ListingIn), now)
                made = await listings.submit(session, rules, vendor, made.id, now)
                answers = [{"item": item.item, "passed": True, "evidence": "start-up benchmark"} for item in made.checklist or []]
                listed = await listings.approve(session, ledger, rules, operator, made.id,
                                                msgspec.convert({"reason": "start-up benchmark", "checklist": answers}, ApproveIn), now)
                books.append((listed.id, listed.plans[0].id or "", vendor))  # type: ignore[union-attr]
        async with db.write() as session:
            funding = [JournalIn(transfers=[Transfer(id=f"fund-{b.id}", kind=TransferKind.deposit, debit_account="exchange:bank:CNY",
                                                     credit_account=f"{b.id}:available:CNY", amount=10**13, currency="CNY")]) for b in buyers]
            await post_journals(session, ledger, funding, now)

        # Placed over the last day (so no participant is near its per-minute order limit), each
        # living as long as the rules allow.
        placed = now - timedelta(days=1)
        expires = placed + timedelta(days=rules.rulebook.trading.quota.order_lifetime_days_max)
        per_book = orders // listing_count
        rows: list[dict[str, Any]] = []
        holds: list[JournalIn] = []
        depth: dict[str, dict[str, int]] = {}
        columns = [c.name for c in Order.__table__.columns]  # type: ignore[attr-defined]
        written = 0

        async def flush() -> None:
            nonlocal rows, holds
            async with db.write() as session:
                await session.execute(Order.__table__.insert(), rows)  # type: ignore[attr-defined]
                refused = [r for r in await post_journals(session, ledger, holds, now) if isinstance(r, Exception)]
                if refused:
                    raise SystemExit(f"a hold was refused: {refused[0]}")
            rows, holds = [], []

        for listing_id, plan_id, vendor in books:
            seq = 0
            depth[listing_id] = {"buy": 0, "sell": 0}
            for k in range(per_book):
                seq += 1
                placed += timedelta(microseconds=100)
                sell = k % 2 == 0
                away = TICK * (1 + min(99, int(abs(rng.gauss(0, 20)))))  # at most 100 levels a side: the book route shows them all
                price = REFERENCE + away if sell else REFERENCE - away
                quantity = rng.randint(1, 50)
                owner = vendor.id if sell else rng.choice(buyers).id
                order = Order(id=new_id("ord"), listing_id=listing_id, revision=1, plan_id=plan_id, plan_kind="quota", participant_id=owner,
                              side="sell" if sell else "buy", type="limit", price=price, quantity=quantity, remaining=quantity,
                              time_in_force="gtc", status="open", seq=seq, rulebook_hash=rules.hash, violations=[], expires_at=expires,
                              created_at=placed, updated_at=placed)
                if not sell:
                    order.hold_id, order.held = f"{order.id}.hold.1", price * quantity
                    holds.append(JournalIn(transfers=[Transfer(
                        id=order.hold_id, kind=TransferKind.hold, phase=Phase.pending, debit_account=f"{owner}:available:CNY",
                        credit_account=f"{vendor.id}:available:CNY", amount=order.held, currency="CNY",
                        references=References(order=order.id, listing=listing_id))]))
                rows.append({name: getattr(order, name) for name in columns})
                depth[listing_id]["sell" if sell else "buy"] += quantity
                written += 1
                if len(rows) >= BATCH:
                    await flush()
            async with db.write() as session:  # the book row, numbered past its orders (made on first use otherwise)
                if (await session.execute(sa.update(Book).where(Book.listing_id == listing_id).values(seq=seq))).rowcount == 0:  # type: ignore[arg-type, attr-defined]
                    session.add(Book(listing_id=listing_id, status="open", seq=seq, updated_at=now))
        if rows:
            await flush()
        buyer = buyers[0]
    finally:
        await db.dispose()
    return {"books": books, "depth": depth, "orders": written, "buyer_key": buyer.api_key}


def analyze(url: str) -> None:
    psql_url = url.replace("postgresql+asyncpg://", "postgresql://")
    subprocess.run(["psql", psql_url, "-qc", "VACUUM ANALYZE"], check=True)


def ready_path(port: int) -> str:
    """/ready when the server has one, else /health."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            if response.status == 200:
                return "/ready"
    except OSError:
        pass
    return "/health"


def start_once(env: dict[str, str], workdir: Path, world: dict[str, Any], n: int) -> dict[str, Any]:
    port = free_port()
    log = workdir / f"serve-{n}.log"
    with log.open("wb") as out:
        spawned = time.perf_counter()
        process = subprocess.Popen([str(EXCHANGE_BIN), "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        paths = ["/ready", "/health"]
        ready_at = None
        while ready_at is None:
            for path in paths:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                        if response.status == 200:
                            ready_at = time.perf_counter()
                            break
                except urllib.error.HTTPError as error:
                    if error.code == 404 and path == "/ready":
                        paths = ["/health"]  # this server has no readiness route of its own
                        break
                except OSError:
                    pass
            if process.poll() is not None:
                raise SystemExit(f"exchange serve exited with {process.returncode}: {log.read_text()[-2000:]}")
            if time.perf_counter() - spawned > 120:
                raise SystemExit("exchange serve was not ready within 120 s")
            if ready_at is None:
                time.sleep(0.01)
        ready_s = ready_at - spawned

        async def probe() -> tuple[float, float, dict[str, Any]]:
            connection = Connection("127.0.0.1", port)
            listing_id, plan_id, _ = world["books"][0]
            started = time.perf_counter()
            status, raw = await connection.request("GET", f"/v1/listings/{listing_id}/book?levels=100")
            book_s = time.perf_counter() - started
            if status != 200:
                raise SystemExit(f"book read failed: {status} {raw[:300]!r}")
            book = msgspec.json.decode(raw)
            order = {"listing_id": listing_id, "plan_id": plan_id, "side": "buy", "quantity": 1, "price": REFERENCE + 50, "time_in_force": "ioc"}
            started = time.perf_counter()
            status, raw = await connection.request("POST", "/v1/orders", msgspec.json.encode(order), {"Authorization": f"Bearer {world['buyer_key']}"})
            order_s = time.perf_counter() - started
            connection.close()
            if status != 201:
                raise SystemExit(f"first order failed: {status} {raw[:300]!r}")
            return book_s, order_s, book

        book_s, order_s, book = asyncio.run(probe())
        return {"ready_s": ready_s, "path": paths[0], "book_s": book_s, "order_s": order_s, "book": book}
    finally:
        stop(process)


def depth_of(book: dict[str, Any], side: str) -> int:
    """Units on one side of a GET /v1/listings/{id}/book answer, whatever the level key is called."""
    levels = book.get({"buy": "bids", "sell": "asks"}[side]) or []
    return sum(int(level.get("quantity", 0)) for level in levels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--listings", type=int, default=100)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    header()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        url = asyncio.run(fresh_postgres("exchange_bench_startup"))
        started = time.perf_counter()
        world = asyncio.run(seed(url, workdir, args.orders, args.listings))
        analyze(url)
        print(f"seeded {world['orders']:,} resting orders on {args.listings} quota books, buys held in the ledger "
              f"({time.perf_counter() - started:.1f} s, untimed)")
        env = exchange_env(url, workdir)
        starts = []
        for n in range(args.starts):
            start = start_once(env, workdir, world, n)
            starts.append(start)
            print(f"start {n + 1}: ready ({start['path']}) after {start['ready_s']:.2f} s; first book read {start['book_s'] * 1000:.0f} ms, "
                  f"first order {start['order_s'] * 1000:.0f} ms")
        listing_id = world["books"][0][0]
        book = starts[0]["book"]
        shown = {side: depth_of(book, side) for side in ("buy", "sell")}
        expected = world["depth"][listing_id]
        print(f"book of {listing_id} after the first start: {shown} units shown, {expected} written")
        if shown != expected:
            raise SystemExit("the started server does not show the resting orders that were written")
    ready = statistics.median(s["ready_s"] for s in starts)
    each = ", ".join(f"{s['ready_s']:.2f}" for s in starts)
    result("start-up, ready", round(ready, 2), "s", aim=AIM, database="postgresql", size=f"{world['orders']:,} resting orders, {args.listings} books",
           note=f"median of {len(starts)} starts ({each} s) to 200 on {starts[0]['path']}; "
                f"first order after it {statistics.median(s['order_s'] for s in starts) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
