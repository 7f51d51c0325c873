"""The order desk alone: batches of the mixed load's orders and cancels handed straight to
`OrderDesk.place` in this process, without HTTP, so that what a batch costs the desk shows apart
from the HTTP work that shares its process when served.

    .venv/bin/python benchmarks/desk.py                      # 300 batches of 32
    .venv/bin/python benchmarks/desk.py --batches 500 --batch 48

Set-up (not timed) is `load.py`'s, through one `exchange serve` on a fresh PostgreSQL database
(exchange_bench_desk): funded buyers, eight quota books with deep asks, the per-participant
limits lifted; with the server's autovacuum off, its statistics work done as `load.py` does it. Then each batch is `--batch` requests in the mixed load's proportions (55 orders:
15 cancels; of the orders 70% ioc buys that cross and 30% gtc buys that rest below the asks,
each with an Idempotency-Key; cancels of orders a batch before left resting), placed together
so that the desk takes them as one batch, one batch after the other.

Printed: requests a second through the desk alone (its serial ceiling), the batch's wall time
(p50, p95), the CPU of this process per request (the desk and the set-up of its tickets, which
is small), statements per batch, and how long a batch waits for each kind of statement (by its
first words). A change to the desk shows here at a few percent, where the mixed load over HTTP
moves by ten from run to run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, one_exchange, percentile, result  # noqa: E402
from load import BUYERS, REFERENCE, setup, stand_in_for_autovacuum  # noqa: E402

from exchange.cli import collect_for_serving  # noqa: E402
from exchange.context import Exchange  # noqa: E402
from exchange.orders.desk import Cancel, Ticket  # noqa: E402
from exchange.orders.schemas import OrderIn  # noqa: E402
from exchange.settings import Settings  # noqa: E402

DATABASE = "exchange_bench_desk"
CANCEL_SHARE = 15 / 70  # of the desk's requests in the mixed load: 55 orders to 15 cancels


def ticket(key: str, body: dict[str, Any]) -> Ticket:
    raw = msgspec.json.encode(body)
    digest = hashlib.sha256(b"POST /v1/orders " + raw).hexdigest()  # any stable hash of the request serves
    return Ticket(f"Bearer {key}", str(uuid.uuid4()), digest, msgspec.json.decode(raw, type=OrderIn))


async def run(exchange: Exchange, world: dict[str, Any], batches: int, size: int, rng: random.Random) -> dict[str, Any]:
    desk = exchange.desk
    assert desk is not None, "the desk runs on PostgreSQL with order_batch_max > 0"
    statements = [0]
    waited: dict[str, list[float]] = {}  # a statement's first words → [times run, seconds waited], in the timed batches
    engine = exchange.db.writer.sync_engine

    def sent(connection: Any, *_: Any) -> None:
        statements[0] += 1
        connection.info["desk_bench_sent"] = time.perf_counter()

    def answered(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        spent = waited.setdefault(" ".join(statement.split()[:6])[:64], [0, 0.0])
        spent[0] += 1
        spent[1] += time.perf_counter() - connection.info.pop("desk_bench_sent")

    sa.event.listen(engine, "before_cursor_execute", sent)
    sa.event.listen(engine, "after_cursor_execute", answered)
    resting: list[tuple[str, str]] = []
    walls: list[float] = []
    counted = {"placed": 0, "cancelled": 0, "alone": 0, "refused": 0}
    cpu = wall = 0.0
    for number in range(batches):
        requests: list[Ticket | Cancel] = []
        owners: list[str] = []
        for _ in range(size):
            buyer = rng.choice(world["buyers"])
            if rng.random() < CANCEL_SHARE and resting:
                owner, order_id = resting.pop(rng.randrange(len(resting)))
                requests.append(Cancel(f"Bearer {owner}", order_id))
                owners.append(owner)
                continue
            listing, plan, _ = rng.choice(world["listings"])
            tif = "ioc" if rng.random() < 0.7 else "gtc"
            price = rng.randint(REFERENCE - 100, REFERENCE + 200) if tif == "ioc" else rng.randint(REFERENCE - 1000, REFERENCE - 200)
            requests.append(ticket(buyer, {"listing_id": listing, "plan_id": plan, "side": "buy", "type": "limit", "quantity": rng.randint(1, 5),
                                           "price": price, "time_in_force": tif}))
            owners.append(buyer)
        if number == batches // 10:
            # The warm-up grew the tables from the set-up's few rows: analyze them now, as
            # autovacuum soon would, so that the plans the desk's prepared statements settle on
            # are made for tables of this size. Planned for the set-up's, they read ledger_entries
            # whole until the next ANALYZE (6.7 ms a batch, late in a run of 120 batches).
            async with exchange.db.writer.begin() as connection:
                await connection.execute(sa.text("ANALYZE"))
            waited.clear()
        before_cpu, before = time.process_time(), time.perf_counter()
        answers = await asyncio.gather(*(desk.place(request) for request in requests))
        elapsed = time.perf_counter() - before
        if number >= batches // 10:  # the first tenth warms caches and connections
            walls.append(elapsed)
            cpu += time.process_time() - before_cpu
            wall += elapsed
        for request, owner, answer in zip(requests, owners, answers, strict=True):
            if answer is None:
                counted["alone"] += 1
            elif isinstance(answer, Exception):
                counted["refused"] += 1
            elif isinstance(request, Cancel):
                counted["cancelled"] += 1
            else:
                counted["placed"] += 1
                out = msgspec.json.decode(answer.content)
                if out["status"] == "open":
                    resting.append((owner, out["id"]))
    timed = len(walls)
    requests_timed = timed * size
    walls.sort()
    return {
        "rate": requests_timed / wall, "p50": percentile(walls, 0.50) * 1000, "p95": percentile(walls, 0.95) * 1000,
        "cpu_ms": cpu / requests_timed * 1000, "statements": statements[0] / batches, **counted,
        "waited": sorted(((seconds / timed * 1000, count / timed, words) for words, (count, seconds) in waited.items()), reverse=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32, help="requests placed together in each batch")
    parser.add_argument("--buyers", type=int, default=BUYERS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--order-rate", default="100000",
                        help="orders a minute one participant may place, or 'rules' for the shipped limit (spread over --buyers 2000)")
    args = parser.parse_args()
    header()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        with one_exchange(DATABASE, workdir) as (url, env, port):
            started = time.perf_counter()
            order_rate = None if args.order_rate == "rules" else int(args.order_rate)
            world = asyncio.run(setup("127.0.0.1", port, (workdir / "operator.key").read_text().strip(), args.buyers, order_rate))
        limit = "the shipped order-rate limit" if order_rate is None else f"order-rate limit {order_rate:,}/min"
        print(f"set-up: {args.buyers} funded buyers ({limit}), 8 quota books with deep asks ({time.perf_counter() - started:.1f} s, untimed)")
        settings = Settings.from_env(env)

        async def measure() -> dict[str, Any]:
            exchange = Exchange(settings)
            collect_for_serving()  # as `exchange serve` does before it serves
            analysing = await stand_in_for_autovacuum(url)
            try:
                return await run(exchange, world, args.batches, args.batch, random.Random(args.seed))
            finally:
                if analysing is not None:
                    analysing.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await analysing
                await exchange.db.dispose()

        figures = asyncio.run(measure())
    size = f"{args.batches} batches of {args.batch}, {args.buyers} buyers, 8 books" + ("" if args.order_rate == "100000" else f", order rate {args.order_rate}")
    print(f"the desk alone: {figures['rate']:,.0f} requests/s; a batch p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms; "
          f"{figures['cpu_ms']:.3f} ms of CPU a request; {figures['statements']:.1f} statements a batch")
    print("  the batch's statements, as the desk waits for each (sent to answered; the commit not counted), a batch:")
    for ms, count, words in figures["waited"][:6]:
        print(f"    {ms:6.1f} ms  {count:4.1f}×  {words} …")
    print(f"  placed {figures['placed']:,}, cancelled {figures['cancelled']:,}, refused {figures['refused']:,}, left to the single-order path {figures['alone']:,}")
    note = f"batch p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms; {figures['statements']:.1f} statements a batch; alone {figures['alone']}"
    result("order desk alone", round(figures["rate"]), "requests/s", database="postgresql", size=size, note=note)
    result("order desk CPU per request", round(figures["cpu_ms"], 3), "ms", database="postgresql", size=size)


if __name__ == "__main__":
    main()
