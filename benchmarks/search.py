"""Catalogue search latency: GET /v1/listings of a served `exchange serve` process over loopback,
on a catalogue of 100,000 listings in Chinese and English, with mixed queries and filters, on
SQLite and on PostgreSQL. Prints p50/p95/p99 per database and per query.

    .venv/bin/python benchmarks/search.py [--listings 100000] [--rounds 30] [--no-sqlite] [--no-postgres]
    .venv/bin/python benchmarks/search.py --listings 1000,10000,100000      # how latency moves with size

The catalogue is made from the demo catalogue's 52 products (8 categories, grades L1-L3, every
plan kind), each copy with its own region, year, product code and scaled prices, from 200
vendors, 90% listed (the rest drafts, submissions and delisted products, which anonymous
searches must not see). It is written straight into the tables through the app's own table
definitions, with the plans flattened and the search index made as the app makes them
(`service.search_tokens`, `repository.index_many`); untimed. PostgreSQL is then ANALYZEd, as
autovacuum would after a load; SQLite gets no ANALYZE (the app never runs one).

The timed part: each query of QUERIES (full-text in Chinese and English, prefixes, filters,
price ranges, every sort order, a second page through its cursor, no match) `--rounds` times
in a shuffled order, one at a time on one keep-alive connection, as an anonymous caller; every
answer must be 200. The figure is the p95 over all of them (nearest rank). The server keeps no
search answers (EXCHANGE_SEARCH_CACHE_PAGES=0): repeated public queries would otherwise be
answered from its cache (exchange/listings/cache.py), and this measures the search itself.
PostgreSQL runs on a database of its own (exchange_bench_search)."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import EXCHANGE_BIN, exchange_env, free_port, fresh_postgres, header, percentile, result, served  # noqa: E402
from httpload import Connection  # noqa: E402

from exchange.core.ids import new_id  # noqa: E402
from exchange.db import make_engine  # noqa: E402
from exchange.demo_catalogue import LISTINGS, VENDORS  # noqa: E402
from exchange.listings import repository  # noqa: E402
from exchange.listings.plans import currency_of, headline_price_fen  # noqa: E402
from exchange.listings.schemas import ListingIn  # noqa: E402
from exchange.listings.service import search_tokens  # noqa: E402
from exchange.migrate import upgrade  # noqa: E402
from exchange.rulebook.files import read_rule_dir  # noqa: E402
from exchange.rulebook.load import decode_rulebook, rulebook_hash  # noqa: E402
from exchange.settings import normalise_database_url, shipped_rules_dir  # noqa: E402
from exchange.tables import Listing, ListingPlan, ListingRevision, Participant  # noqa: E402

AIM = ("≤", 30)
VENDOR_COUNT = 200
BATCH = 2_000
REGIONS = [
    ("上海", "Shanghai"), ("浦东新区", "Pudong"), ("长三角", "Yangtze River Delta"), ("北京", "Beijing"), ("杭州", "Hangzhou"),
    ("苏州", "Suzhou"), ("南京", "Nanjing"), ("深圳", "Shenzhen"), ("广州", "Guangzhou"), ("成都", "Chengdu"), ("武汉", "Wuhan"),
    ("重庆", "Chongqing"), ("天津", "Tianjin"), ("西安", "Xi'an"), ("合肥", "Hefei"), ("宁波", "Ningbo"), ("青岛", "Qingdao"),
    ("厦门", "Xiamen"), ("粤港澳大湾区", "Greater Bay Area"), ("全国", "Nationwide"),
]
EXTRAS = [
    ("按小时更新", "updated hourly"), ("按日汇总", "daily aggregates"), ("历史回溯十年", "ten years of history"),
    ("含空间坐标", "with coordinates"), ("经脱敏处理", "de-identified"), ("提供样例数据", "sample data available"),
    ("支持私有化部署", "on-premise delivery"), ("覆盖重点企业", "covers key enterprises"), ("季度质量报告", "quarterly quality report"),
    ("接口毫秒级响应", "millisecond API responses"),
]
FACTORS = (1, 1, 2, 3, 5, 10, 20, 50)
STATUSES = ["listed"] * 90 + ["delisted"] * 4 + ["draft"] * 3 + ["submitted"] * 3


def scaled(value: Any, factor: int) -> Any:
    """Every money amount in a plan times `factor`."""
    if isinstance(value, dict):
        if set(value) == {"amount", "currency"}:
            return {"amount": value["amount"] * factor, "currency": value["currency"]}
        return {k: scaled(v, factor) for k, v in value.items()}
    if isinstance(value, list):
        return [scaled(v, factor) for v in value]
    return value


def body_for(n: int, rng: random.Random) -> ListingIn:
    template = LISTINGS[n % len(LISTINGS)]["body"]
    region_zh, region_en = rng.choice(REGIONS)
    extra_zh, extra_en = rng.choice(EXTRAS)
    year = rng.randint(2015, 2026)
    zh, _, en = template["title"].partition(" ")
    title = f"{region_zh}{zh} {year} {region_en} {en}"[:200]
    description = (f"{template['description']} 覆盖{region_zh}，{extra_zh}。Covers {region_en}, {extra_en}. "
                   f"产品编号 DX{n:06d}。")
    factor = rng.choice(FACTORS)
    plans = [{**scaled(plan, factor), "id": new_id("pln")} for plan in template["plans"]]
    return msgspec.convert({**template, "title": title, "description": description, "plans": plans}, ListingIn)


async def load_catalogue(url: str, count: int, seed: int = 1) -> dict[str, Any]:
    """Write `count` listings straight into the tables; what the queries need to know."""
    await asyncio.to_thread(upgrade, url)
    files = read_rule_dir(shipped_rules_dir())
    rulebook, rules_hash = decode_rulebook(files), rulebook_hash(files)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    engine = make_engine(normalise_database_url(url), timeout_s=600)
    vendors = [new_id("par") for _ in range(VENDOR_COUNT)]
    async with engine.begin() as connection:
        await connection.execute(Participant.__table__.insert(), [  # type: ignore[attr-defined]
            {"id": vendor, "name": f"{VENDORS[i % len(VENDORS)]['name']} {i}", "roles": ["vendor"],
             "qualifications": VENDORS[i % len(VENDORS)]["qualifications"], "sponsor_id": None, "status": "active", "created_at": now}
            for i, vendor in enumerate(vendors)
        ])
    for first in range(0, count, BATCH):
        listings, revisions, plans, documents = [], [], [], []
        for n in range(first, min(count, first + BATCH)):
            body = body_for(n, rng)
            content = msgspec.to_builtins(body)
            listing_id = new_id("lst")
            vendor = vendors[rng.randrange(VENDOR_COUNT)]
            status = rng.choice(STATUSES)
            created = now - timedelta(days=365) + timedelta(seconds=n * 300 + rng.randrange(300))
            listed_at = created + timedelta(days=1) if status in ("listed", "delisted") else None
            prices = [price for plan in body.plans if (price := headline_price_fen(plan)) is not None]
            listings.append({
                "id": listing_id, "vendor_id": vendor, "status": status, "revision": 1, "pending_revision": None, "title": body.title,
                "category": body.category, "grade": body.grade, "delivery": body.delivery, "content": content,
                "min_price_fen": min(prices, default=repository.PRICE_NONE),
                "rulebook_hash": rules_hash, "created_at": created, "updated_at": listed_at or created, "listed_at": listed_at,
            })
            revisions.append({"listing_id": listing_id, "number": 1, "status": "approved" if listed_at else status, "content": content,
                              "created_by": vendor, "created_at": created})
            plans.extend({"listing_id": listing_id, "id": plan.id, "kind": type(plan).__struct_config__.tag,
                          "price_fen": headline_price_fen(plan), "currency": currency_of(plan)} for plan in body.plans)
            documents.append((listing_id, search_tokens(body, rulebook)))
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(Listing.__table__.insert(), listings)  # type: ignore[attr-defined]
            await session.execute(ListingRevision.__table__.insert(), revisions)  # type: ignore[attr-defined]
            await session.execute(ListingPlan.__table__.insert(), plans)  # type: ignore[attr-defined]
            await repository.index_many(session, documents)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text("VACUUM ANALYZE"))
    async with engine.connect() as connection:
        some = (await connection.execute(sa.select(Listing.vendor_id).where(Listing.status == "listed").limit(1))).scalar_one()
    await engine.dispose()
    return {"vendor": some}


def queries(world: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What a catalogue page asks: name -> query parameters."""
    return {
        "q=交通 (common Chinese word)": {"q": "交通"},
        "q=上海交通出行 (Chinese phrase)": {"q": "上海交通出行"},
        "q=数据 (in nearly every listing)": {"q": "数据"},
        "q=医疗 影像 (two Chinese words)": {"q": "医疗 影像"},
        "q=mobility": {"q": "mobility"},
        "q=traf (English prefix)": {"q": "traf"},
        "q=Shenzhen credit": {"q": "Shenzhen credit"},
        "q=dx004242 (one product code)": {"q": "dx004242"},
        "q=qwertyzzz (no match)": {"q": "qwertyzzz"},
        "q=交通, category, newest": {"q": "交通", "category": "transport", "sort": "newest"},
        "q=金融, price_asc": {"q": "金融", "sort": "price_asc"},
        "category=finance": {"category": "finance"},
        "category=medical, grade=L2": {"category": "medical", "grade": "L2"},
        "delivery=api, plan_kind=metered": {"delivery": "api", "plan_kind": "metered"},
        "plan_kind=metered, price_max=10": {"plan_kind": "metered", "price_max": 10},
        "price 1,000-5,000 yuan, price_asc": {"price_min": 100_000, "price_max": 500_000, "sort": "price_asc"},
        "sort=price_desc": {"sort": "price_desc"},
        "sort=title": {"sort": "title"},
        "newest (no filter)": {},
        "vendor=one vendor": {"vendor": world["vendor"]},
        "page 2 of newest": {"_page2": {}},
        "page 2 of q=交通": {"_page2": {"q": "交通"}},
    }


async def run_queries(port: int, world: dict[str, Any], rounds: int, seed: int = 1) -> dict[str, list[float]]:
    connection = Connection("127.0.0.1", port)

    async def get(params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        path = "/v1/listings" + ("?" + urlencode(params) if params else "")
        started = time.perf_counter()
        status, raw = await connection.request("GET", path)
        elapsed = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {raw[:300]!r}")
        return elapsed, msgspec.json.decode(raw)

    prepared: dict[str, dict[str, Any]] = {}
    for name, params in queries(world).items():
        if "_page2" in params:
            _, first = await get(params["_page2"])
            params = {**params["_page2"], "cursor": first["next_cursor"]}
        await get(params)  # warms the server's caches and the database's pages; untimed
        prepared[name] = params
    plan = [name for name in prepared for _ in range(rounds)]
    random.Random(seed).shuffle(plan)
    latencies: dict[str, list[float]] = {name: [] for name in prepared}
    for name in plan:
        elapsed, _ = await get(prepared[name])
        latencies[name].append(elapsed)
    connection.close()
    return latencies


async def existing_catalogue(url: str) -> tuple[dict[str, Any], int]:
    """An already loaded catalogue (--existing): one of its vendors, and its size."""
    engine = make_engine(normalise_database_url(url))
    async with engine.connect() as connection:
        vendor = (await connection.execute(sa.select(Listing.vendor_id).where(Listing.status == "listed").limit(1))).scalar_one()
        count = (await connection.execute(sa.select(sa.func.count()).select_from(Listing))).scalar_one()
    await engine.dispose()
    return {"vendor": vendor}, int(count)


def measure(label: str, url: str, count: int, rounds: int, existing: bool = False) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        started = time.perf_counter()
        if existing:
            world, count = asyncio.run(existing_catalogue(url))
        else:
            world = asyncio.run(load_catalogue(url, count))
            print(f"{label:<10} {count:>9,} listings written in {time.perf_counter() - started:.1f} s (untimed)")
        port = free_port()
        env = exchange_env(url, workdir, EXCHANGE_SEARCH_CACHE_PAGES="0")  # the engine's latency, not the answers a process keeps
        with served([str(EXCHANGE_BIN), "serve", "--port", str(port)], env, f"http://127.0.0.1:{port}/health", workdir / "serve.log"):
            latencies = asyncio.run(run_queries(port, world, rounds))
    every = sorted(v for values in latencies.values() for v in values)
    p50, p95, p99 = (percentile(every, q) * 1000 for q in (0.50, 0.95, 0.99))
    print(f"{label:<10} {count:>9,} listings: {len(every):,} queries, p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")
    for name, values in sorted(latencies.items(), key=lambda item: -percentile(sorted(item[1]), 0.5)):
        ordered = sorted(values)
        print(f"    {name:<40} p50 {percentile(ordered, 0.5) * 1000:7.1f} ms   max {ordered[-1] * 1000:7.1f} ms")
    slowest = max(latencies, key=lambda name: percentile(sorted(latencies[name]), 0.5))
    result("catalogue search p95", round(p95, 1), "ms", aim=AIM, database=label, size=f"{count:,} listings, {len(every):,} queries",
           note=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; slowest query {slowest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listings", default="100000", help="catalogue size, or sizes separated by commas")
    parser.add_argument("--rounds", type=int, default=30, help="times each query is asked")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--existing", metavar="URL", help="measure a catalogue already in this database (migrated), writing nothing")
    args = parser.parse_args()
    header()
    if args.existing:
        measure("sqlite" if args.existing.startswith("sqlite") else "postgresql", args.existing, 0, args.rounds, existing=True)
        return
    for count in (int(n) for n in args.listings.split(",")):
        if not args.no_sqlite:
            with tempfile.TemporaryDirectory() as folder:
                measure("sqlite", f"sqlite+aiosqlite:///{Path(folder) / 'search.db'}", count, args.rounds)
        if not args.no_postgres:
            measure("postgresql", asyncio.run(fresh_postgres("exchange_bench_search")), count, args.rounds)


if __name__ == "__main__":
    main()
