"""Two server processes on one PostgreSQL, fed crossing orders for one listing at once: no
over-fill, no buyer's money spent twice, and a ledger that still balances and verifies."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exchange.db import Database
from exchange.settings import Settings
from exchange.settlement import audit
from tests.harness import Api, listing_body

BUYERS = 12
UNITS_ON_SALE = 60
UNITS_PER_ORDER = 10
PRICE = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def servers(clean_database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env |= {"EXCHANGE_DATABASE_URL": clean_database_url, "EXCHANGE_SIGNING_KEY_FILE": str(tmp_path / "signing.key"),
            "EXCHANGE_OPERATOR_KEY_FILE": str(tmp_path / "operator.key"), "EXCHANGE_LOG_LEVEL": "warning"}
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen([sys.executable, "-m", "exchange.cli", "serve", "--port", str(port)], env=env, cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 30
        for url, process in zip(urls, processes, strict=True):
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else "server exited"
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
            if process.stderr is not None:
                process.stderr.close()


@pytest.mark.postgres_only  # several server processes on SQLite are serialised by its one writer anyway
async def test_crossing_orders_on_two_servers_never_overfill_or_double_spend(servers: list[str], clean_database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=clean_database_url, signing_key_file=str(tmp_path / "signing.key"))
    helper = Api(None, settings)  # type: ignore[arg-type]  # only its participant() is used: straight through the service
    _, operator = await helper.participant("operator")
    _, vendor = await helper.participant("vendor", qualifications=["data-merchant"])
    buyers = [await helper.participant("buyer") for _ in range(BUYERS)]
    a, b = (httpx.AsyncClient(base_url=url, timeout=60) for url in servers)

    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    body = listing_body(plans=[{"kind": "quota", "unit": "10,000 calls", "reference_price": {"amount": PRICE, "currency": "CNY"}}])
    listing = (await a.post("/v1/listings", json=body, headers=auth(vendor))).json()
    submitted = (await a.post(f"/v1/listings/{listing['id']}/submit", headers=auth(vendor))).json()
    approval = {"reason": "ok", "checklist": [{"item": i["item"], "passed": True, "evidence": "checked"} for i in submitted["checklist"]]}
    listed = (await b.post(f"/v1/listings/{listing['id']}/approve", json=approval, headers=auth(operator))).json()
    assert listed["status"] == "listed", listed
    plan_id = listed["plans"][0]["id"]

    # Each buyer can afford one order of 10 units (plus fee), not two.
    deposit = PRICE * UNITS_PER_ORDER * 3 // 2
    for buyer_id, _ in buyers:
        response = await a.post("/v1/accounts/deposits", headers=auth(operator),
                                json={"participant_id": buyer_id, "amount": deposit, "currency": "CNY", "rail": "bank", "reference": f"d-{buyer_id}"})
        assert response.status_code == 201, response.text
    sell = await b.post("/v1/orders", headers=auth(vendor), json={"listing_id": listing["id"], "plan_id": plan_id, "side": "sell",
                                                                   "quantity": UNITS_ON_SALE, "price": PRICE})
    assert sell.status_code == 201, sell.text

    order = {"listing_id": listing["id"], "plan_id": plan_id, "side": "buy", "quantity": UNITS_PER_ORDER, "price": PRICE}
    requests = [client.post("/v1/orders", headers=auth(key), json=order) for _, key in buyers for client in (a, b)]
    responses = await asyncio.gather(*requests)
    accepted: list[dict[str, Any]] = [r.json() for r in responses if r.status_code == 201]
    refused = [r.json() for r in responses if r.status_code != 201]
    assert all(r["code"] == "insufficient_funds" for r in refused), refused[:3]

    per_buyer: dict[str, int] = {}
    for o in accepted:
        per_buyer[o["participant_id"]] = per_buyer.get(o["participant_id"], 0) + 1
    assert max(per_buyer.values()) == 1  # the second order of every buyer found the money held
    filled = sum(o["filled"] for o in accepted)
    assert filled == UNITS_ON_SALE  # twelve buyers want 120 units: exactly the 60 on sale fill
    sold = (await a.get(f"/v1/orders/{sell.json()['id']}", headers=auth(vendor))).json()
    assert sold["status"] == "filled" and sold["filled"] == UNITS_ON_SALE
    trades = (await b.get(f"/v1/listings/{listing['id']}/trades", params={"limit": 100})).json()["items"]
    assert sum(t["quantity"] for t in trades) == UNITS_ON_SALE

    for _, key in buyers:
        balance = (await a.get("/v1/accounts/me", headers=auth(key))).json()["balances"][0]
        assert balance["available"] >= 0 and balance["available"] + balance["escrow"] == deposit

    db = Database(settings)
    try:
        report = await audit.verify_database(db)
    finally:
        await db.dispose()
    assert report.ok, report.problems
    assert report.totals == {"CNY": 0}
    await a.aclose()
    await b.aclose()
