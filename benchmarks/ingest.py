"""Usage ingestion end to end: records per second through POST /v1/contracts/{id}/usage (the
real app, in process, over ASGI), into SQLite and PostgreSQL. Prints its figures.

    .venv/bin/python benchmarks/ingest.py [--records 200000] [--batch 5000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from exchange.app import create_app
from exchange.db import Database
from exchange.migrate import upgrade
from exchange.participants import service as participants
from exchange.participants.schemas import ParticipantIn
from exchange.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger import BENCH_POSTGRES, fresh_postgres  # noqa: E402  (the sibling benchmark owns the database set-up)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) - timedelta(hours=2)

    def __call__(self) -> datetime:
        return self.now


async def run(label: str, url: str, records: int, batch: int, workdir: Path) -> None:
    await asyncio.to_thread(upgrade, url)
    settings = Settings(database_url=url, signing_key_file=str(workdir / f"{label}.key"), operator_key_file=str(workdir / "op.key"))
    keys: dict[str, str] = {}
    db = Database(settings)
    async with db.write() as session:
        for role in ("operator", "vendor", "buyer"):
            created = await participants.register(session, msgspec.convert({"name": f"bench {role}", "roles": [role]}, ParticipantIn), datetime.now(UTC))
            keys[role] = created.api_key
    await db.dispose()
    clock = Clock()
    app = create_app(settings, clock=clock)
    async with AsyncTestClient(app=app) as client:
        def auth(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {keys[role]}"}

        body: dict[str, Any] = {
            "title": "Bench metered API", "description": "A metered API for the ingestion benchmark, 计量接口。", "category": "transport",
            "grade": "L2", "delivery": "api", "schema": "calls", "attestations": {"source": "bench", "rights": ["holding", "use", "operation"]},
            "licence": {"purposes": ["research"], "duration_days": 365},
            "plans": [{"kind": "metered", "tiers": [{"up_to": None, "price": {"amount": 1, "currency": "CNY"}}]}],
        }
        listing = (await client.post("/v1/listings", json=body, headers=auth("vendor"))).json()
        submitted = (await client.post(f"/v1/listings/{listing['id']}/submit", headers=auth("vendor"))).json()
        approval = {"reason": "bench", "checklist": [{"item": i["item"], "passed": True, "evidence": "bench"} for i in submitted["checklist"]]}
        listed = (await client.post(f"/v1/listings/{listing['id']}/approve", json=approval, headers=auth("operator"))).json()
        order = (await client.post("/v1/orders", json={"listing_id": listed["id"], "plan_id": listed["plans"][0]["id"]}, headers=auth("buyer"))).json()
        contract = order["contract_ids"][0]
        clock.now += timedelta(hours=1)
        start_at = clock.now - timedelta(minutes=50)
        batches = []
        for first in range(0, records, batch):
            rows = [{"record_id": f"r{n}", "at": (start_at + timedelta(milliseconds=n)).isoformat(), "calls": 1 + n % 7}
                    for n in range(first, min(records, first + batch))]
            batches.append(msgspec.json.encode({"batch_id": f"b{first}", "records": rows}))
        started = time.perf_counter()
        for payload in batches:
            response = await client.post(f"/v1/contracts/{contract}/usage", content=payload, headers={**auth("vendor"), "content-type": "application/json"})
            assert response.status_code == 200, response.text
        elapsed = time.perf_counter() - started
        last = response.json()
    print(f"{label:<10} ingest {records:>9,} usage records in batches of {batch:,} over HTTP: {elapsed:6.2f} s  "
          f"{records / elapsed:>9,.0f} records/s  (cycle calls counted: {last['cycle_calls']:,})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        await run("sqlite", f"sqlite+aiosqlite:///{workdir / 'bench.db'}", args.records, args.batch, workdir)
        if not args.no_postgres:
            await run("postgresql", await fresh_postgres(BENCH_POSTGRES), args.records, args.batch, workdir)


if __name__ == "__main__":
    asyncio.run(main())
