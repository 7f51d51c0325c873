"""Usage ingestion over HTTP: records per second through POST /v1/contracts/{id}/usage of a served
`exchange serve` process, on loopback, into SQLite and PostgreSQL. Each batch is checked against
the contract's term, stored once per batch id, and the open cycle's calls are counted and rated
against the plan's tiers and the credit limit (the answer carries the cycle's calls and exposure).
Prints its figures.

    .venv/bin/python benchmarks/ingest.py [--records 200000] [--batch 1000] [--no-sqlite] [--no-postgres]

Batches are sent one after another on one keep-alive connection (they lock the same contract,
so a gateway gains nothing from sending them in parallel); request bodies are encoded before
the clock starts. PostgreSQL runs on a database of its own (exchange_bench_ingest)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import EXCHANGE_BIN, exchange_env, free_port, fresh_postgres, header, result, served  # noqa: E402
from httpload import Connection  # noqa: E402

from exchange.db import Database  # noqa: E402
from exchange.migrate import upgrade  # noqa: E402
from exchange.participants import service as participants  # noqa: E402
from exchange.participants.schemas import ParticipantIn  # noqa: E402
from exchange.settings import Settings  # noqa: E402

AIM = ("≥", 50_000)


async def call(connection: Connection, method: str, path: str, key: str, body: Any = None) -> Any:
    status, raw = await connection.request(method, path, msgspec.json.encode(body) if body is not None else b"", {"Authorization": f"Bearer {key}"})
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {raw[:500]!r}")
    return msgspec.json.decode(raw)


async def keys_for(url: str, workdir: Path) -> dict[str, str]:
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    db = Database(Settings(database_url=url, signing_key_file=str(workdir / "signing.key")))
    keys: dict[str, str] = {}
    try:
        async with db.write() as session:
            for role in ("operator", "vendor", "buyer"):
                made = await participants.register(session, msgspec.convert({"name": f"bench {role}", "roles": [role]}, ParticipantIn), datetime.now(UTC))
                keys[role] = made.api_key
    finally:
        await db.dispose()
    return keys


async def ingest(port: int, keys: dict[str, str], records: int, batch: int) -> tuple[float, dict[str, Any]]:
    connection = Connection("127.0.0.1", port)
    body: dict[str, Any] = {
        "title": "Bench metered API", "description": "A metered API for the ingestion benchmark, 计量接口。", "category": "transport",
        "grade": "L2", "delivery": "api", "schema": "calls", "attestations": {"source": "bench", "rights": ["holding", "use", "operation"]},
        "licence": {"purposes": ["research"], "duration_days": 365},
        "plans": [{"kind": "metered", "tiers": [{"up_to": None, "price": {"amount": 1, "currency": "CNY"}}]}],
    }
    listing = await call(connection, "POST", "/v1/listings", keys["vendor"], body)
    submitted = await call(connection, "POST", f"/v1/listings/{listing['id']}/submit", keys["vendor"])
    approval = {"reason": "bench", "checklist": [{"item": i["item"], "passed": True, "evidence": "bench"} for i in submitted["checklist"]]}
    listed = await call(connection, "POST", f"/v1/listings/{listing['id']}/approve", keys["operator"], approval)
    order = await call(connection, "POST", "/v1/orders", keys["buyer"], {"listing_id": listed["id"], "plan_id": listed["plans"][0]["id"]})
    contract = order["contract_ids"][0]
    # Usage from the contract's start on, 100 µs apart: within its term, never in the future
    # beyond the server's allowed clock skew.
    start_at = datetime.now(UTC) + timedelta(milliseconds=10)
    await asyncio.sleep(0.02)
    path = f"/v1/contracts/{contract}/usage"
    headers = {"Authorization": f"Bearer {keys['vendor']}"}
    payloads = []
    for first in range(0, records, batch):
        rows = [{"record_id": f"r{n}", "at": (start_at + timedelta(microseconds=100 * n)).isoformat(), "calls": 1 + n % 7}
                for n in range(first, min(records, first + batch))]
        payloads.append(msgspec.json.encode({"batch_id": f"b{first}", "records": rows}))
    started = time.perf_counter()
    last: dict[str, Any] = {}
    for payload in payloads:
        status, raw = await connection.request("POST", path, payload, headers)
        if status != 200:
            raise RuntimeError(f"usage batch refused: {status} {raw[:500]!r}")
        last = msgspec.json.decode(raw)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed, last


def run(label: str, url: str, records: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        keys = asyncio.run(keys_for(url, workdir))
        port = free_port()
        env = exchange_env(url, workdir)
        with served([str(EXCHANGE_BIN), "serve", "--port", str(port)], env, f"http://127.0.0.1:{port}/health", workdir / "serve.log"):
            elapsed, last = asyncio.run(ingest(port, keys, records, batch))
    rate = records / elapsed
    print(f"{label:<10} ingest {records:>9,} usage records in batches of {batch:,} over HTTP: {elapsed:6.2f} s  {rate:>9,.0f} records/s  "
          f"(cycle calls counted: {last['cycle_calls']:,}, exposure {last['exposure']:,} fen)")
    result("usage ingestion over HTTP", round(rate), "records/s", aim=AIM, database=label, size=f"{records:,} records, batches of {batch:,}",
           note="one `exchange serve` on loopback, batches sent one after another")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    header()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            run("sqlite", f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}", args.records, args.batch)
    if not args.no_postgres:
        run("postgresql", asyncio.run(fresh_postgres("exchange_bench_ingest")), args.records, args.batch)


if __name__ == "__main__":
    main()
