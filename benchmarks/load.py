"""Mixed load against a running exchange: catalogue search, order placement and cancels,
contract reads. Prints throughput and latency percentiles per operation, and errors.

    .venv/bin/python benchmarks/load.py --recipe             # start deploy/local/run.sh on a fresh database, then load it
    .venv/bin/python benchmarks/load.py --url http://127.0.0.1:8100 --operator-key var/local/operator.key

Set-up (not timed): buyers with money, quota listings with deep sell books, and the
per-participant limits lifted for the run (the run is one client population, not abuse)."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from exchange.settings import shipped_rules_dir  # noqa: E402

LISTINGS = 8
BUYERS = 32


def listing_body(n: int) -> dict[str, Any]:
    return {
        "title": f"负载测试交通数据 {n} Load-test mobility data {n}", "description": "负载测试用的按量计费交通数据。Mobility data for the load test.",
        "category": "transport", "grade": "L2", "delivery": "api", "update_frequency": "daily", "schema": "trips",
        "attestations": {"source": "load test", "rights": ["holding", "use", "operation"]},
        "licence": {"purposes": ["research"], "duration_days": 365},
        "plans": [{"kind": "quota", "unit": "1,000 calls", "reference_price": {"amount": 10_000, "currency": "CNY"}}],
    }


async def setup(client: httpx.AsyncClient, operator: str) -> dict[str, Any]:
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    trading = (shipped_rules_dir() / "trading.toml").read_text(encoding="utf-8")
    trading = (trading.replace("rate_per_minute_max = 60", "rate_per_minute_max = 100000")
               .replace("requests_per_minute = 1200", "requests_per_minute = 1000000")
               .replace("circuit_breaker_bps = 1000", "circuit_breaker_bps = 100000")
               .replace("order_quantity_max = 10000", "order_quantity_max = 1000000"))
    applied = await client.put("/v1/rules", headers=auth(operator), json={"files": {"trading.toml": trading}, "reason": "load test"})
    assert applied.status_code == 200, applied.text
    vendor = (await client.post("/v1/participants", headers=auth(operator), json={"name": "load vendor", "roles": ["vendor"]})).json()
    buyers = []
    for n in range(BUYERS):
        buyer = (await client.post("/v1/participants", headers=auth(operator), json={"name": f"load buyer {n}", "roles": ["buyer"]})).json()
        await client.post("/v1/accounts/deposits", headers=auth(operator), json={
            "participant_id": buyer["id"], "amount": 10**12, "currency": "CNY", "rail": "bank", "reference": f"load-{uuid.uuid4()}"})
        buyers.append(buyer["api_key"])
    listings = []
    for n in range(LISTINGS):
        made = (await client.post("/v1/listings", headers=auth(vendor["api_key"]), json=listing_body(n))).json()
        submitted = (await client.post(f"/v1/listings/{made['id']}/submit", headers=auth(vendor["api_key"]))).json()
        approval = {"reason": "load", "checklist": [{"item": i["item"], "passed": True, "evidence": "load"} for i in submitted["checklist"]]}
        listed = (await client.post(f"/v1/listings/{made['id']}/approve", headers=auth(operator), json=approval)).json()
        plan = listed["plans"][0]["id"]
        for price in range(10_000, 10_500, 50):
            await client.post("/v1/orders", headers=auth(vendor["api_key"]), json={
                "listing_id": made["id"], "plan_id": plan, "side": "sell", "quantity": 500_000, "price": price})
        listings.append((made["id"], plan))
    return {"buyers": buyers, "listings": listings}


async def run(url: str, operator: str, seconds: float, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        world = await setup(client, operator)
        latencies: dict[str, list[float]] = {"order": [], "cancel": [], "search": [], "contract": []}
        errors: dict[str, int] = {}
        open_orders: list[tuple[str, str]] = []
        contracts: list[tuple[str, str]] = []
        rng = random.Random(1)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                buyer = rng.choice(world["buyers"])
                headers = {"Authorization": f"Bearer {buyer}"}
                roll = rng.random()
                started = time.perf_counter()
                if roll < 0.55:
                    listing, plan = rng.choice(world["listings"])
                    tif = "ioc" if rng.random() < 0.7 else "gtc"
                    price = rng.randint(9_900, 10_200) if tif == "ioc" else rng.randint(9_000, 9_800)
                    response = await client.post("/v1/orders", headers={**headers, "Idempotency-Key": str(uuid.uuid4())}, json={
                        "listing_id": listing, "plan_id": plan, "quantity": rng.randint(1, 5), "price": price, "time_in_force": tif})
                    kind = "order"
                    if response.status_code == 201:
                        body = response.json()
                        if body["status"] == "open":
                            open_orders.append((buyer, body["id"]))
                        contracts.extend((buyer, c) for c in body["contract_ids"][:1])
                elif roll < 0.70 and open_orders:
                    owner, order_id = open_orders.pop(rng.randrange(len(open_orders)))
                    response = await client.delete(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {owner}"})
                    kind = "cancel"
                elif roll < 0.85 or not contracts:
                    response = await client.get("/v1/listings", params={"q": rng.choice(["交通", "mobility", "数据", "load"]), "limit": 20})
                    kind = "search"
                else:
                    owner, contract = rng.choice(contracts)
                    response = await client.get(f"/v1/contracts/{contract}", headers={"Authorization": f"Bearer {owner}"})
                    kind = "contract"
                latencies[kind].append(time.perf_counter() - started)
                if response.status_code >= 400 and not (kind == "cancel" and response.status_code == 409):
                    label = f"{kind} {response.status_code}"
                    errors[label] = errors.get(label, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began

    total = sum(len(v) for v in latencies.values())
    print(f"{total:,} requests in {elapsed:.1f} s with {concurrency} concurrent clients: {total / elapsed:,.0f} requests/s; "
          f"orders placed {len(latencies['order']) / elapsed:,.0f}/s")
    for kind, values in latencies.items():
        if values:
            ordered = sorted(values)
            p50, p95, p99 = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 for q in (0.50, 0.95, 0.99))
            print(f"  {kind:<9} {len(values):>7,}  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms  "
                  f"mean {statistics.mean(values) * 1000:6.1f} ms")
    print(f"  errors: {errors or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url")
    parser.add_argument("--operator-key", help="file holding an operator's API key")
    parser.add_argument("--recipe", action="store_true", help="start deploy/local/run.sh on a fresh database first")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs (the load generator shares them)")
    if not args.recipe:
        asyncio.run(run(args.url, Path(args.operator_key).read_text().strip(), args.seconds, args.concurrency))
        return
    with tempfile.TemporaryDirectory() as folder:
        database = "exchange_load"
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        env |= {"EXCHANGE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}", "DEPLOY_RUN": folder, "DEPLOY_PORT": "8200",
                "DEPLOY_PROCESSES": str(args.processes), "EXCHANGE_LOG_LEVEL": "warning"}
        subprocess.run([str(ROOT / "deploy/local/run.sh"), "start"], env=env, check=True, capture_output=True)
        try:
            asyncio.run(run("http://127.0.0.1:8200", (Path(folder) / "operator.key").read_text().strip(), args.seconds, args.concurrency))
        finally:
            subprocess.run([str(ROOT / "deploy/local/run.sh"), "stop"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
